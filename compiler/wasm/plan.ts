// A compiled plan on the wasm backend: every buffer of the fused program (inputs, constants, kernel outputs) has
// a fixed, 16-byte aligned place in one WebAssembly.Memory, and one module holds one function per kernel with
// those places as constants. Nothing is copied between kernels; a run copies the given inputs in and the
// requested outputs out.
import { size } from '../../core/shape.ts';
import type { FusedProgram } from '../passes/fuse.ts';
import type { KernelIR } from '../kernel/ir.ts';
import { encodeModule, type ModuleFunction } from './encoder.ts';
import { chooseTiling, emitKernel, type Tiling } from './emitKernel.ts';

const PAGE = 65536;
/** addresses are i32 and kept below 2^31 (signed arithmetic on offsets stays exact) */
export const MAX_PLAN_BYTES = 2 ** 31 - PAGE;

export class WasmPlanError extends Error {
  override readonly name = 'WasmPlanError';
}

export interface WasmPlan {
  readonly memory: WebAssembly.Memory;
  /** byte offset of each materialised node's buffer */
  readonly offsets: ReadonlyMap<number, number>;
  /** one function per kernel, in execution order */
  readonly kernels: readonly (() => void)[];
  readonly tilings: readonly Tiling[];
  /** bytes of the memory the plan uses */
  readonly bytes: number;
  /** a view of node `id`'s buffer (valid until the memory grows; this plan's never does) */
  view(id: number): Float32Array;
}

export const buildWasmPlan = (prog: FusedProgram, irs: readonly KernelIR[]): WasmPlan => {
  const { graph } = prog;
  const offsets = new Map<number, number>();
  let end = 0;
  for (const n of graph.nodes) {
    if (!prog.materialized.has(n.id)) continue;
    offsets.set(n.id, end);
    end += Math.ceil((4 * size(n.shape)) / 16) * 16;
  }
  if (end > MAX_PLAN_BYTES)
    throw new WasmPlanError(`the wasm backend cannot hold this plan: its buffers take ${end} bytes, more than the ${MAX_PLAN_BYTES} a 32-bit memory addresses here`);
  const pages = Math.max(1, Math.ceil(end / PAGE));
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const layout = {
    offsetOf: (id: number) => {
      const off = offsets.get(id);
      if (off === undefined) throw new Error(`wasm plan: node %${id} has no buffer`);
      return off;
    },
  };
  const tilings = irs.map(chooseTiling);
  const functions: ModuleFunction[] = prog.kernels.map((k, i) => ({
    name: `k${i}`,
    body: emitKernel(irs[i], layout, { root: k.root, extras: k.extraOutputs ?? [] }, tilings[i]),
  }));
  const bytes = encodeModule(functions, { minPages: pages, maxPages: pages, shared: false });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const kernels = functions.map((fn) => instance.exports[fn.name] as () => void);
  for (const n of graph.nodes) if (n.op === 'constant' && offsets.has(n.id)) new Float32Array(memory.buffer, offsets.get(n.id)!, size(n.shape)).set(n.attrs.value);
  return {
    memory,
    offsets,
    kernels,
    tilings,
    bytes: end,
    view: (id) => new Float32Array(memory.buffer, layout.offsetOf(id), size(graph.nodes[id].shape)),
  };
};
