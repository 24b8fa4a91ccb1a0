// `fusediff/storage` (Node): checkpoints (safetensors with io-ts-checked metadata, written atomically), the
// safetensors codec itself, and the package's committed checkpoints by name (`pretrained:NAME`).
export {
  CheckpointError,
  SignatureMismatchError,
  SafetensorsError,
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpoint,
  readCheckpointFile,
  saveCheckpoint,
  sameSignature,
  type Checkpoint,
  type CheckpointInput,
  type LoadOptions,
  type SaveOptions,
} from './checkpoint.ts';
export { decodeSafetensors, encodeSafetensors, type DecodedSafetensors, type TensorHeader, type WriteDtype } from './safetensors.ts';
export { writeFileAtomic, WriteError } from './atomicWrite.ts';
export { packageFile, pretrainedNames, resolveCheckpointRef, PRETRAINED } from './packageFiles.ts';
