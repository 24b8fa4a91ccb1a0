// A compiled plan on the WGSL backend. Every buffer of the fused program (inputs, constants, kernel outputs) has a
// fixed, aligned range of one GPU buffer (the arena), as in the wasm backend's one memory; each kernel binds its
// ranges (reads read-only, outputs read-write) through a bind group made at compile time. A run is one command
// encoder and one compute pass: the given inputs go up with writeBuffer, every kernel is dispatched in order, the
// requested outputs are copied to a mapped buffer, and the whole is one submission.
//
// Feedback (a training step's new parameters, optimizer state and EMA) never leaves the GPU: the state inputs and the
// state outputs sit in two ranges of the same layout, and a last dispatch copies the outputs over the inputs. With a
// gate (the loss), that copy happens only when the gate is finite and no earlier gated run of the plan failed (a flag
// on the GPU, set by the failing run), so a non-finite loss keeps the state from before its step without the host
// waiting for any loss inside a step; resetGate() lets later runs adopt again.
import type { NDArray } from '../../core/ndarray.ts';
import { fmt, sameShape, size, type Shape } from '../../core/shape.ts';
import type { DeviceBuffer, WgslPlanBackend } from '../backend.ts';
import { BackendError, NonFiniteError } from '../errors.ts';
import type { CompiledKernel } from '../kernel.ts';
import { planMemory } from '../memoryPlan.ts';
import { hostInput } from '../inputs.ts';
import { checkInto, deliverInto } from '../into.ts';
import type { FusedProgram } from '../passes/fuse.ts';
import type { Executable } from '../plan.ts';
import { MAP_READ, USAGE, type GpuContext } from './gpu.ts';
import type { WgslKernelPlan } from './shaders.ts';
import { dispatchOf, WORKGROUP } from './wgsl.ts';

type Given = Readonly<Record<string, DeviceBuffer | NDArray | ArrayLike<number>>>;

export interface WgslPlanOptions {
  readonly checkNaN?: boolean;
  readonly profile?: boolean;
  /** output name -> input name it becomes in the next run */
  readonly feedback?: Readonly<Record<string, string>>;
  /** the output whose finiteness decides whether the feedback is adopted (a training step's loss) */
  readonly feedbackGate?: string;
}

export class WebGPUPlanError extends Error {
  override readonly name = 'WebGPUPlanError';
}

const COPY_CODE = (count: number, gated: boolean): string => {
  const [gx] = dispatchOf(count);
  return [
    '@group(0) @binding(0) var<storage, read_write> dst : array<f32>;',
    '@group(0) @binding(1) var<storage, read_write> src : array<f32>;',
    ...(gated
      ? [
          '@group(0) @binding(2) var<storage, read_write> gate : array<f32>;',
          '@group(0) @binding(3) var<storage, read_write> flag : array<u32>;',
        ]
      : []),
    `@compute @workgroup_size(${WORKGROUP})`,
    'fn main(@builtin(global_invocation_id) gid : vec3<u32>) {',
    `  let i = gid.x + gid.y * ${gx * WORKGROUP}u;`,
    `  if (i >= ${count}u) { return; }`,
    gated ? '  if (flag[0] == 0u && (bitcast<u32>(gate[0]) & 0x7fffffffu) < 0x7f800000u) { dst[i] = src[i]; }' : '  dst[i] = src[i];',
    '}',
  ].join('\n');
};

const FLAG_CODE = [
  '@group(0) @binding(0) var<storage, read_write> flag : array<u32>;',
  '@group(0) @binding(1) var<storage, read_write> gate : array<f32>;',
  '@compute @workgroup_size(1)',
  'fn main() {',
  '  if ((bitcast<u32>(gate[0]) & 0x7fffffffu) >= 0x7f800000u) { flag[0] = 1u; }',
  '}',
].join('\n');

interface Dispatch {
  readonly pipeline: GPUComputePipeline;
  readonly bindGroup: GPUBindGroup;
  readonly groups: readonly [number, number];
}

export const compileOnWebGPU = (
  backend: WgslPlanBackend,
  reason: string,
  program: FusedProgram,
  kernels: readonly CompiledKernel[],
  shaders: readonly WgslKernelPlan[],
  options: WgslPlanOptions,
): Executable => {
  const ctx: GpuContext = backend.context();
  const { device } = ctx;
  const g = program.graph;
  const inputs = new Map(g.nodes.flatMap((n) => (n.op === 'input' ? [[n.attrs.name, n.shape] as const] : [])));
  const inputNodes = g.nodes.filter((n) => n.op === 'input');
  const outputId = new Map(g.outputs.map((o) => [o.name, o.id]));
  const inputId = new Map(inputNodes.map((n) => [n.op === 'input' ? n.attrs.name : '', n.id]));
  const produced = new Set(kernels.flatMap((k) => [k.root, ...(k.extraOutputs ?? [])]));
  const feedback = Object.entries(options.feedback ?? {}).map(([out, inp]) => {
    const from = outputId.get(out);
    const to = inputId.get(inp);
    if (from === undefined || to === undefined || !sameShape(g.nodes[from].shape, g.nodes[to].shape))
      throw new Error(`compile: feedback '${out}' -> '${inp}' needs an output and an input of one shape`);
    return { from, to, out };
  });
  const fedBack = new Set(Object.keys(options.feedback ?? {}));
  const resident = new Set(Object.values(options.feedback ?? {}));
  const gateId = options.feedbackGate === undefined ? undefined : outputId.get(options.feedbackGate);
  if (options.feedbackGate !== undefined && gateId === undefined)
    throw new Error(`compile: feedbackGate '${options.feedbackGate}' is not an output`);

  // ---- the arena: the state inputs, then the state outputs in the same layout (one copy adopts them), then the rest
  // ranges are 16-byte multiples: a kernel may read any node as vec4 (wgsl.ts), and the array length of its binding is
  // then its size / 16, which must cover the node's last, partial vector
  const align = Math.max(16, ctx.offsetAlignment);
  // a split kernel's scratch (splitK.ts) has an id past the graph's nodes and a range like theirs
  const scratch = new Map(shaders.flatMap((s) => (s.scratch ? [[s.scratch.id, s.scratch.size] as const] : [])));
  const floatsOf = (id: number) => scratch.get(id) ?? size(g.nodes[id].shape);
  const bytesOf = (id: number) => Math.max(16, Math.ceil(floatsOf(id) / 4) * 16);
  const padded = (id: number) => Math.ceil(bytesOf(id) / align) * align;
  const offsets = new Map<number, number>();
  let end = 0;
  const place = (id: number) => {
    if (offsets.has(id)) return false;
    offsets.set(id, end);
    end += padded(id);
    return true;
  };
  // a pair can be adopted by the one region copy when its output is a kernel's own, used once as state
  const regionPairs = feedback.filter(
    (p, i) => p.from !== p.to && produced.has(p.from) && feedback.findIndex((q) => q.from === p.from) === i,
  );
  const looseCopies = feedback.filter((p) => p.from !== p.to && !regionPairs.includes(p));
  const stateIn = end;
  for (const p of regionPairs) place(p.to);
  const stateBytes = end - stateIn;
  const stateOut = end;
  for (const p of regionPairs) place(p.from);
  for (const n of g.nodes) if (program.materialized.has(n.id) || n.op === 'input') place(n.id);
  for (const o of g.outputs) place(o.id);
  for (const id of scratch.keys()) place(id);
  const arenaBytes = Math.max(align, end);
  const limitError = (what: string) =>
    new WebGPUPlanError(
      `the webgpu backend cannot hold this plan on ${ctx.description}: ${what}; ` +
        'a smaller batch or model fits, or use the wasm backend',
    );
  if (arenaBytes > ctx.maxBufferBytes)
    throw limitError(`its buffers take ${arenaBytes} bytes, more than the adapter's maxBufferSize of ${ctx.maxBufferBytes}`);
  const what = (id: number) => (scratch.has(id) ? `the split-K scratch ${id}` : `node ${id} (${g.nodes[id].op} ${fmt(g.nodes[id].shape)})`);
  for (const id of offsets.keys())
    if (padded(id) > ctx.maxBindingBytes)
      throw limitError(`${what(id)} takes ${bytesOf(id)} bytes, more than one binding may span (${ctx.maxBindingBytes})`);
  if (stateBytes > ctx.maxBindingBytes) throw limitError(`its state takes ${stateBytes} bytes, more than one binding may span`);

  backend.addPlan(kernels.length);
  const arena = backend.createBuffer(arenaBytes, USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST);
  const range = (id: number): GPUBufferBinding => ({ buffer: arena, offset: offsets.get(id)!, size: bytesOf(id) });
  for (const n of g.nodes)
    if (n.op === 'constant' && offsets.has(n.id)) device.queue.writeBuffer(arena, offsets.get(n.id)!, Float32Array.from(n.attrs.value));

  // ---- pipelines and bind groups, once: a dispatch per shader, two for a split kernel (partial, then combine)
  const dispatches: Dispatch[][] = shaders.map((plan, i) =>
    plan.shaders.map((s) => {
      const bindings = s.reads.length + s.writes.length;
      if (bindings > ctx.maxStorageBuffers)
        throw new BackendError(
          kernels[i],
          'webgpu',
          new Error(`it binds ${bindings} storage buffers; ${ctx.description} allows ${ctx.maxStorageBuffers}`),
        );
      try {
        const pipeline = backend.pipeline(s.code);
        const bindGroup = device.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: [...s.reads, ...s.writes].map((id, binding) => ({ binding, resource: range(id) })),
        });
        return { pipeline, bindGroup, groups: s.groups };
      } catch (e) {
        throw new BackendError(kernels[i], 'webgpu', e);
      }
    }),
  );
  let flag: GPUBuffer | undefined;
  const adopt: Dispatch[] = [];
  if (stateBytes > 0) {
    const count = stateBytes / 4;
    const gated = gateId !== undefined;
    const copy = backend.pipeline(COPY_CODE(count, gated));
    const stateRange = (offset: number): GPUBufferBinding => ({ buffer: arena, offset, size: stateBytes });
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: stateRange(stateIn) },
      { binding: 1, resource: stateRange(stateOut) },
    ];
    if (gated) {
      flag = backend.createBuffer(256, USAGE.STORAGE | USAGE.COPY_DST);
      entries.push({ binding: 2, resource: range(gateId) }, { binding: 3, resource: { buffer: flag, offset: 0, size: 4 } });
    }
    adopt.push({
      pipeline: copy,
      bindGroup: device.createBindGroup({ layout: copy.getBindGroupLayout(0), entries }),
      groups: dispatchOf(count),
    });
    if (gated && flag) {
      const set = backend.pipeline(FLAG_CODE);
      const bindGroup = device.createBindGroup({
        layout: set.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: flag, offset: 0, size: 4 } },
          { binding: 1, resource: range(gateId) },
        ],
      });
      adopt.push({ pipeline: set, bindGroup, groups: [1, 1] });
    }
  }

  const profile = new Float64Array(kernels.length);
  let disposed = false;
  const live = (what: string) => {
    if (disposed) throw new Error(`${what}: this plan was disposed (its GPU buffers are freed); compile the graph again`);
    if (backend.disposed) throw new Error(`${what}: backend webgpu was disposed after this plan was compiled; compile the graph again`);
  };
  const sync = (what: string) => () => {
    throw new Error(`${what}: the webgpu backend runs asynchronously; use runAsync, runDeviceAsync or readAsync`);
  };

  const bind = (given: Given) => {
    for (const n of inputNodes) {
      const data = hostInput(n, given, resident, inputs, 'webgpu');
      if (data) device.queue.writeBuffer(arena, offsets.get(n.id)!, data instanceof Float32Array ? data : Float32Array.from(data));
    }
  };

  const encodeKernels = (pass: GPUComputePassEncoder, list: readonly Dispatch[]) => {
    for (const d of list) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(d.groups[0], d.groups[1]);
    }
  };

  type Reads = { staging?: GPUBuffer; at: Map<number, number>; bytes: number };

  /** The feedback pairs the state-region copy does not cover. */
  const encodeLooseCopies = (encoder: GPUCommandEncoder) => {
    for (const p of looseCopies) encoder.copyBufferToBuffer(arena, offsets.get(p.from)!, arena, offsets.get(p.to)!, bytesOf(p.from));
  };

  /** Copies of the nodes `ids` into one pooled mapped buffer, each once (none for no ids). */
  const encodeReads = (encoder: GPUCommandEncoder, ids: readonly number[]): Reads => {
    const at = new Map<number, number>();
    let bytes = 0;
    for (const id of ids) {
      if (at.has(id)) continue;
      at.set(id, bytes);
      bytes += bytesOf(id);
    }
    if (bytes === 0) return { at, bytes };
    const staging = backend.staging(bytes);
    for (const [id, off] of at) encoder.copyBufferToBuffer(arena, offsets.get(id)!, staging, off, bytesOf(id));
    return { staging, at, bytes };
  };

  /** The values of the read nodes once the GPU has written them (with no reads: once the submitted work is done). */
  const collect = async (s: Reads): Promise<Map<number, Float32Array>> => {
    const out = new Map<number, Float32Array>();
    if (!s.staging) {
      await device.queue.onSubmittedWorkDone();
      return out;
    }
    await s.staging.mapAsync(MAP_READ, 0, s.bytes);
    const all = new Float32Array(s.staging.getMappedRange(0, s.bytes).slice(0));
    s.staging.unmap();
    backend.returnStaging(s.staging);
    for (const [id, off] of s.at) out.set(id, all.subarray(off / 4, off / 4 + size(g.nodes[id].shape)));
    return out;
  };

  /** Encodes the whole run and the copies of `reads` (node ids) into a staging buffer; submits once. */
  const submit = (reads: readonly number[]): Reads => {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    encodeKernels(pass, [...dispatches.flat(), ...adopt]);
    pass.end();
    encodeLooseCopies(encoder);
    const r = encodeReads(encoder, reads);
    device.queue.submit([encoder.finish()]);
    return r;
  };

  const readNodes = (ids: readonly number[]): Promise<Map<number, Float32Array>> => {
    const encoder = device.createCommandEncoder();
    const r = encodeReads(encoder, ids);
    device.queue.submit([encoder.finish()]);
    return collect(r);
  };

  /** Profiling and checkNaN: each kernel its own submission, timed to completion / read back and checked. */
  const runKernelByKernel = async () => {
    for (let i = 0; i < dispatches.length; i++) {
      const start = performance.now();
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      encodeKernels(pass, dispatches[i]);
      pass.end();
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
      profile[i] += performance.now() - start;
      if (options.checkNaN) {
        const k = kernels[i];
        const data = (await readNodes([k.root])).get(k.root)!;
        const bad = data.findIndex((x) => !Number.isFinite(x));
        if (bad >= 0) throw new NonFiniteError(k, bad, data[bad]);
      }
    }
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    encodeKernels(pass, adopt);
    pass.end();
    encodeLooseCopies(encoder);
    device.queue.submit([encoder.finish()]);
  };

  const returned = g.outputs.filter((o) => !fedBack.has(o.name));
  const returnedShapes = new Map(returned.map((o) => [o.name, g.nodes[o.id].shape]));
  const runOnce = async (given: Given, reads: readonly number[]): Promise<Map<number, Float32Array>> => {
    live('run');
    bind(given);
    if (options.profile || options.checkNaN) {
      await runKernelByKernel();
      return readNodes(reads);
    }
    return collect(submit(reads));
  };

  const hostOutputs = (values: Map<number, Float32Array>, only?: readonly string[]): Record<string, NDArray> =>
    Object.fromEntries(
      returned
        .filter((o) => !only || only.includes(o.name))
        .map((o) => [o.name, { shape: g.nodes[o.id].shape, data: Float64Array.from(values.get(o.id)!) }]),
    );

  return {
    backend: 'webgpu',
    device: backend,
    backendReason: `${reason} (WGSL on ${ctx.description}; ${kernels.length} kernels in one submission per run)`,
    fallbacks: [],
    program,
    kernels,
    memory: planMemory(program),
    inputs,
    profile,
    runDevice: sync('runDevice'),
    run: sync('run'),
    read: sync('read'),
    runDeviceAsync: async (given, runOptions) => {
      // `into`: checked before the run; the read-back values are copied into the caller's arrays
      checkInto(runOptions?.into, returnedShapes, fedBack);
      const values = await runOnce(
        given,
        returned.map((o) => o.id),
      );
      const out = Object.fromEntries(returned.map((o) => [o.name, values.get(o.id)!]));
      return deliverInto(out, runOptions?.into, (_, buffer) => buffer as Float32Array);
    },
    runAsync: async (given, only) => {
      const wanted = returned.filter((o) => !only || only.includes(o.name)).map((o) => o.id);
      return hostOutputs(await runOnce(given, wanted), only);
    },
    readAsync: async (buffer: DeviceBuffer, shape: Shape) => {
      live('read');
      if (!(buffer instanceof Float32Array)) throw new Error('webgpu: read a buffer this plan returned (a Float32Array)');
      return buffer.subarray(0, size(shape));
    },
    runGated: async (given, gate) => {
      const id = outputId.get(gate);
      if (id === undefined) throw new Error(`runGated: no output '${gate}'`);
      return (await runOnce(given, [id])).get(id)![0];
    },
    resetGate: () => {
      live('resetGate');
      if (flag) device.queue.writeBuffer(flag, 0, new Uint32Array(1));
    },
    readInput: sync('readInput'),
    readInputAsync: async (name) => {
      live('readInput');
      const id = inputId.get(name);
      if (id === undefined) throw new Error(`readInput: no input '${name}'; inputs: ${[...inputs.keys()].join(', ')}`);
      return (await readNodes([id])).get(id)!.slice();
    },
    heldBuffers: () => 0,
    get disposed() {
      return disposed;
    },
    dispose: () => {
      if (disposed) return;
      disposed = true;
      backend.destroyBuffer(arena);
      if (flag) backend.destroyBuffer(flag);
      backend.releasePlan(kernels.length);
    },
  };
};
