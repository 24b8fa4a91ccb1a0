// A measuring probe, not library code: a 256 x 256 matmul as hand-written WGSL on the page's own WebGPU device, one
// output per thread (what gpu.js's WGSL does) and in 16 x 16 workgroup-shared tiles (what gpu.js's kernel language
// cannot say). test/browser-graphs.test.ts times both beside gpu.js's kernel, to decide whether the compiler should
// emit its own WGSL from the kernel IR.
const N = 256;
const T = 16;

const naive = `
@group(0) @binding(0) var<storage, read> a : array<f32>;
@group(0) @binding(1) var<storage, read> b : array<f32>;
@group(0) @binding(2) var<storage, read_write> c : array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g : vec3<u32>) {
  let i = g.x / ${N}u;
  let j = g.x % ${N}u;
  var acc = 0.0;
  for (var k = 0u; k < ${N}u; k++) { acc += a[i * ${N}u + k] * b[k * ${N}u + j]; }
  c[g.x] = acc;
}`;

const tiled = `
@group(0) @binding(0) var<storage, read> a : array<f32>;
@group(0) @binding(1) var<storage, read> b : array<f32>;
@group(0) @binding(2) var<storage, read_write> c : array<f32>;
var<workgroup> ta : array<array<f32, ${T}>, ${T}>;
var<workgroup> tb : array<array<f32, ${T}>, ${T}>;
@compute @workgroup_size(${T}, ${T})
fn main(@builtin(global_invocation_id) g : vec3<u32>, @builtin(local_invocation_id) l : vec3<u32>) {
  let i = g.y;
  let j = g.x;
  var acc = 0.0;
  for (var k0 = 0u; k0 < ${N}u; k0 += ${T}u) {
    ta[l.y][l.x] = a[i * ${N}u + k0 + l.x];
    tb[l.y][l.x] = b[(k0 + l.y) * ${N}u + j];
    workgroupBarrier();
    for (var k = 0u; k < ${T}u; k++) { acc += ta[l.y][k] * tb[k][l.x]; }
    workgroupBarrier();
  }
  c[i * ${N}u + j] = acc;
}`;

interface Gpu {
  requestAdapter(): Promise<{ requestDevice(): Promise<Device> } | null>;
}
// the few WebGPU calls used here (the project's typings do not include @webgpu/types)
interface Device {
  createBuffer(d: { size: number; usage: number; mappedAtCreation?: boolean }): Buf;
  createShaderModule(d: { code: string }): unknown;
  createComputePipeline(d: { layout: 'auto'; compute: { module: unknown; entryPoint: string } }): {
    getBindGroupLayout(i: number): unknown;
  };
  createBindGroup(d: { layout: unknown; entries: { binding: number; resource: { buffer: Buf } }[] }): unknown;
  createCommandEncoder(): {
    beginComputePass(): {
      setPipeline(p: unknown): void;
      setBindGroup(i: number, g: unknown): void;
      dispatchWorkgroups(x: number, y?: number): void;
      end(): void;
    };
    copyBufferToBuffer(a: Buf, ao: number, b: Buf, bo: number, n: number): void;
    finish(): unknown;
  };
  readonly queue: {
    submit(c: unknown[]): void;
    writeBuffer(b: Buf, o: number, d: Float32Array): void;
    onSubmittedWorkDone(): Promise<void>;
  };
  destroy(): void;
}
interface Buf {
  destroy(): void;
  mapAsync(mode: number): Promise<void>;
  getMappedRange(): ArrayBuffer;
  unmap(): void;
}

/** ms per matmul (mean of reps, after one warm-up) for each variant, and its result for checking. */
export const timeWgslMatmuls = async (a: Float32Array, b: Float32Array, reps: number) => {
  const gpu = (navigator as unknown as { gpu: Gpu }).gpu;
  const device = await (await gpu.requestAdapter())!.requestDevice();
  const STORAGE = 0x80,
    COPY_DST = 0x08,
    COPY_SRC = 0x04,
    MAP_READ = 0x01;
  const buf = (usage: number) => device.createBuffer({ size: N * N * 4, usage });
  const [ba, bb, bc] = [buf(STORAGE | COPY_DST), buf(STORAGE | COPY_DST), buf(STORAGE | COPY_SRC)];
  const staging = buf(MAP_READ | COPY_DST);
  device.queue.writeBuffer(ba, 0, a);
  device.queue.writeBuffer(bb, 0, b);
  const results: { name: string; ms: number; out: Float32Array }[] = [];
  for (const [name, code, groups] of [
    ['WGSL, one output per thread', naive, [(N * N) / 64, 1]],
    [`WGSL, ${T}x${T} shared tiles`, tiled, [N / T, N / T]],
  ] as const) {
    const pipeline = device.createComputePipeline({
      layout: 'auto',
      compute: { module: device.createShaderModule({ code }), entryPoint: 'main' },
    });
    const group = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [ba, bb, bc].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const run = async () => {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(groups[0], groups[1]);
      pass.end();
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
    };
    await run();
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) await run();
    const ms = (performance.now() - t0) / reps;
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(bc, 0, staging, 0, N * N * 4);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(1);
    const out = new Float32Array(staging.getMappedRange().slice(0));
    staging.unmap();
    results.push({ name, ms, out });
  }
  for (const b of [ba, bb, bc, staging]) b.destroy();
  device.destroy();
  return results;
};
