// The safetensors file format (https://github.com/huggingface/safetensors), written and read by hand:
//
//   bytes [0, 8)        N, the header's length in bytes: unsigned 64-bit little-endian
//   bytes [8, 8 + N)    the header: UTF-8 JSON
//                         { "__metadata__": { string: string },                         (optional)
//                           "<name>": { "dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end] }, ... }
//                       padded with spaces so that 8 + N is a multiple of 8 (as the reference writer does), so the
//                       data section starts 8-byte aligned
//   bytes [8 + N, end)  the data section: each tensor's row-major little-endian values at [begin, end) relative to
//                       the section's start; the tensors cover the section exactly, with no gaps and no overlaps
//
// We write tensors sorted by name (one dtype per file, so every tensor stays naturally aligned) and read F32, F64,
// F16 and BF16 into float64 host arrays. Decoding validates everything the reference reader does and says what is
// wrong and where.
import * as t from 'io-ts';
import { endianness } from 'node:os';
import type { NDArray } from '../core/ndarray.ts';
import { decodeOrThrow, NonNegativeInteger } from './ioReport.ts';

/** A malformed safetensors file or an unencodable input; the message says what is wrong and where. */
export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/** The dtypes we write. */
export type WriteDtype = 'F32' | 'F64';

/** Every dtype of the safetensors spec, with its size in bytes (the F8/F4 variants included for validation). */
const DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};
/** The dtypes we decode into float64. */
const READABLE = ['F32', 'F64', 'F16', 'BF16'] as const;

/** The reference implementation refuses headers above 100 MB. */
const MAX_HEADER_BYTES = 100_000_000;
const LITTLE_ENDIAN_HOST = endianness() === 'LE';
const METADATA_KEY = '__metadata__';

const TensorInfo = t.type(
  { dtype: t.string, shape: t.array(NonNegativeInteger), data_offsets: t.tuple([NonNegativeInteger, NonNegativeInteger]) },
  '{ dtype: string, shape: non-negative integer[], data_offsets: [begin, end] }',
);
const Metadata = t.record(t.string, t.string, '{ [key: string]: string }');

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
const fmtShape = (shape: readonly number[]): string => `[${shape.join(',')}]`;
const byteOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

// ---- encode -----------------------------------------------------------------------------------------------

/**
 * A safetensors file holding `tensors` (sorted by name) in `dtype` and the string→string `metadata`.
 * F32 rounds the float64 host values to nearest (values beyond the f32 range become ±Infinity); F64 is exact.
 */
export const encodeSafetensors = (
  tensors: Readonly<Record<string, NDArray>>,
  metadata: Readonly<Record<string, string>> = {},
  dtype: WriteDtype = 'F32',
): Uint8Array => {
  if (dtype !== 'F32' && dtype !== 'F64')
    throw new SafetensorsError(`encodeSafetensors: dtype '${String(dtype)}' is not writable; use F32 or F64`);
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string')
      throw new SafetensorsError(`encodeSafetensors: metadata '${k}' is a ${typeof v}; safetensors metadata values must be strings`);
  }
  const width = DTYPE_BYTES[dtype];
  const names = Object.keys(tensors).sort(byteOrder);
  const parts: string[] = [];
  if (Object.keys(metadata).length > 0) parts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY) throw new SafetensorsError(`encodeSafetensors: '${METADATA_KEY}' is reserved and cannot name a tensor`);
    const a = tensors[name];
    if (!a || !(a.data instanceof Float64Array) || !Array.isArray(a.shape))
      throw new SafetensorsError(`encodeSafetensors: tensor '${name}' is not an NDArray { shape, data: Float64Array }`);
    if (!a.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new SafetensorsError(`encodeSafetensors: tensor '${name}' has an invalid shape ${fmtShape(a.shape)}`);
    if (numel(a.shape) !== a.data.length)
      throw new SafetensorsError(
        `encodeSafetensors: tensor '${name}' has ${a.data.length} values but shape ${fmtShape(a.shape)} holds ${numel(a.shape)}`,
      );
    const end = offset + a.data.length * width;
    parts.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype, shape: a.shape, data_offsets: [offset, end] })}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen); // pad with spaces
  let at = 8 + headerLen; // a multiple of 8, so typed views of the (freshly allocated) buffer are aligned
  for (const name of names) {
    const src = tensors[name].data;
    if (LITTLE_ENDIAN_HOST)
      (dtype === 'F32' ? new Float32Array(out.buffer, at, src.length) : new Float64Array(out.buffer, at, src.length)).set(src);
    else if (dtype === 'F32') for (let i = 0; i < src.length; i++) view.setFloat32(at + 4 * i, src[i], true);
    else for (let i = 0; i < src.length; i++) view.setFloat64(at + 8 * i, src[i], true);
    at += src.length * width;
  }
  return out;
};

// ---- decode -----------------------------------------------------------------------------------------------

/** The header entry of one tensor, as read. */
export interface TensorHeader {
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly data_offsets: readonly [number, number];
}

/** A decoded safetensors file: its tensors as float64 host arrays, its string metadata and each tensor's stored dtype. */
export interface DecodedSafetensors {
  /** float64 host arrays, in the file's (name-sorted) order */
  readonly tensors: Record<string, NDArray>;
  readonly metadata: Record<string, string>;
  /** each tensor's dtype as stored */
  readonly dtypes: Record<string, string>;
}

export interface DecodeOptions {
  /** names the input in error messages, e.g. the file path */
  source?: string;
}

const f16 = (h: number): number => {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
};

const readValues = (bytes: Uint8Array, at: number, n: number, dtype: string): Float64Array => {
  const out = new Float64Array(n);
  const abs = bytes.byteOffset + at;
  if (LITTLE_ENDIAN_HOST && dtype === 'F32' && abs % 4 === 0) out.set(new Float32Array(bytes.buffer, abs, n));
  else if (LITTLE_ENDIAN_HOST && dtype === 'F64' && abs % 8 === 0) out.set(new Float64Array(bytes.buffer, abs, n));
  else {
    const v = new DataView(bytes.buffer, abs, n * DTYPE_BYTES[dtype]);
    if (dtype === 'F32') for (let i = 0; i < n; i++) out[i] = v.getFloat32(4 * i, true);
    else if (dtype === 'F64') for (let i = 0; i < n; i++) out[i] = v.getFloat64(8 * i, true);
    else if (dtype === 'F16') for (let i = 0; i < n; i++) out[i] = f16(v.getUint16(2 * i, true));
    else {
      const tmp = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < n; i++) {
        tmp.setUint32(0, v.getUint16(2 * i, true) << 16);
        out[i] = tmp.getFloat32(0);
      }
    }
  }
  return out;
};

/**
 * Reads a safetensors file into float64 host arrays. Throws SafetensorsError naming the problem and its place on a
 * truncated file, a header length beyond the file, a header that is not UTF-8 JSON of the expected form, an unknown
 * dtype, a shape whose size disagrees with its byte range, or byte ranges that leave the data section, overlap, or
 * do not cover it exactly.
 */
export const decodeSafetensors = (bytes: Uint8Array, { source = 'safetensors' }: DecodeOptions = {}): DecodedSafetensors => {
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${source}: ${msg}`);
  };
  if (bytes.length < 8)
    fail(`file is ${bytes.length} bytes, shorter than the 8-byte header-length prefix (truncated or not a safetensors file)`);
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(bytes.length - 8)) {
    fail(
      `header length ${n64} (bytes 0-7) exceeds the ${bytes.length - 8} bytes that follow the prefix ` +
        `(file is ${bytes.length} bytes: truncated or not a safetensors file)`,
    );
  }
  const n = Number(n64);
  if (n > MAX_HEADER_BYTES) fail(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2) fail(`header length ${n} is too small to hold a JSON object`);
  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    fail(`header (bytes 8-${8 + n - 1}) is not valid UTF-8`);
  }
  if (!text.startsWith('{')) fail(`header (bytes 8-${8 + n - 1}) does not start with '{': ${JSON.stringify(text.slice(0, 40))}`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`header (bytes 8-${8 + n - 1}) is not valid JSON (${(e as Error).message}); it begins ${JSON.stringify(text.slice(0, 60))}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const err = (msg: string) => new SafetensorsError(`${source}: invalid header:\n${msg}`);

  let metadata: Record<string, string> = {};
  const entries: [string, TensorHeader][] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      metadata = { ...decodeOrThrow(Metadata, info, METADATA_KEY, err) };
      continue;
    }
    const h = decodeOrThrow(TensorInfo, info, `tensor '${name}'`, err);
    const width = DTYPE_BYTES[h.dtype];
    if (width === undefined)
      fail(`tensor '${name}' has unknown dtype '${h.dtype}' (safetensors dtypes: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    if (!(READABLE as readonly string[]).includes(h.dtype))
      fail(`tensor '${name}' has dtype ${h.dtype}, which fusediff does not read (readable: ${READABLE.join(', ')})`);
    const [begin, end] = h.data_offsets;
    if (begin > end) fail(`tensor '${name}' has data_offsets [${begin}, ${end}] with begin after end`);
    if (end > dataLen)
      fail(
        `tensor '${name}' has data_offsets [${begin}, ${end}] beyond the ${dataLen}-byte data section ` +
          `(file bytes ${dataStart}-${bytes.length - 1}; truncated file?)`,
      );
    const want = numel(h.shape) * width;
    if (end - begin !== want)
      fail(
        `tensor '${name}': shape ${fmtShape(h.shape)} of ${h.dtype} needs ${want} bytes ` +
          `but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    entries.push([name, h]);
  }

  // The byte ranges must tile the data section: sorted by offset, each starts where the previous one ended.
  const byOffset = [...entries].sort(([, a], [, b]) => a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1]);
  let cursor = 0;
  let prev = '';
  for (const [name, h] of byOffset) {
    const [begin, end] = h.data_offsets;
    if (begin < cursor) fail(`tensor '${name}' (data_offsets [${begin}, ${end}]) overlaps tensor '${prev}', which ends at ${cursor}`);
    if (begin > cursor) fail(`bytes [${cursor}, ${begin}) of the data section belong to no tensor (gap before '${name}')`);
    cursor = end;
    prev = name;
  }
  if (cursor !== dataLen)
    fail(
      `bytes [${cursor}, ${dataLen}) at the end of the data section belong to no tensor (the tensors cover ${cursor} of ${dataLen} bytes)`,
    );

  entries.sort(([a], [b]) => byteOrder(a, b));
  const tensors = Object.fromEntries(
    entries.map(
      ([name, h]) =>
        [name, { shape: [...h.shape], data: readValues(bytes, dataStart + h.data_offsets[0], numel(h.shape), h.dtype) }] as const,
    ),
  );
  const dtypes = Object.fromEntries(entries.map(([name, h]) => [name, h.dtype] as const));
  return { tensors, metadata, dtypes };
};
