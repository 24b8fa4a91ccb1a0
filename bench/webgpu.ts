// The WebGPU benchmark: fusediff's own WGSL (the webgpu backend) against jax-js on webgpu, on the adapter this
// process finds (in Node through the webgpu package), with fusediff's wasm backend on the same machine's CPU cores
// as the yardstick. `npm run bench` runs it on SwiftShader (a CPU: the ratios judge code generation and submission,
// not a GPU); `npm run bench:gpu` (--gpu) runs the sizes for a GPU machine, under 5 minutes, and writes
// bench/results/webgpu-<adapter>.json.
//   1. the reference MLP step (workloads/reference.ts): samples/s;
//   2. square f32 matmul GFLOP/s (operands resident on the device for every system);
//   3. the UNet MSE step at batch 16 (ms per step): webgpu and wasm.
// Not measured here, and said so in the output: gpu.js's WebGPU path (gpujs-webgpu) in Node, because gpu.js pins the
// webgpu package at 0.2.9, whose binary needs GLIBCXX_3.4.32 (Debian 12 has 3.4.30); it runs in the page
// (test/browser-graphs.test.ts). TF.js's webgpu backend is not a dependency.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { compile, gpuContext, prepareWebGPU, shutdownBackends, type BackendName, type Executable } from '../compiler/index.ts';
import * as op from '../dsl/ops.ts';
import { trace } from '../dsl/trace.ts';
import { BATCH, matmulFlops } from '../workloads/reference.ts';
import { FusediffMlp } from './fusediff/mlpDenoiser.ts';
import { spCostCases, spCostSteps } from './fusediff/spCost.ts';
import { jaxjsMatmul, jaxjsMlp } from './peers/jaxjs.ts';
import type { MatmulPeer, PeerSystem } from './peers/types.ts';
import { timer } from './timer.ts';

const quick = process.argv.includes('--quick');
const gpuSized = process.argv.includes('--gpu');
const skipPeers = process.argv.includes('--no-peers');
const timeTask = timer(quick ? { time: 300, iterations: 2, warmups: 1 } : { time: 2000, iterations: 5, warmups: 3 });

await prepareWebGPU();
const ctx = gpuContext();
if (!ctx) {
  console.log('webgpu bench: no WebGPU adapter here; nothing measured');
  process.exit(0);
}
const adapter = { description: ctx.description, software: ctx.software, via: ctx.source, maxStorageBuffers: ctx.maxStorageBuffers };
console.log(`webgpu bench on ${ctx.description}${ctx.software ? ' (a CPU implementation)' : ''}, via ${ctx.source}`);
console.log(`CPU: ${os.cpus()[0]?.model ?? 'unknown'}, ${os.cpus().length} cores; Node ${process.version}\n`);
const notMeasured = [
  "gpu.js's WebGPU path (gpujs-webgpu) in Node: gpu.js pins webgpu 0.2.9, whose binary needs GLIBCXX_3.4.32 " +
    '(Debian 12: 3.4.30); measured in the page instead',
  "TF.js's webgpu backend: not a dependency of this project",
];

// ---- 1. the reference MLP step --------------------------------------------------------------------------------
interface StepRow {
  system: string;
  backend: string;
  samplesPerSec: number;
  msPerStep: number;
}
const stepRows: StepRow[] = [];
const stepSystems: PeerSystem[] = [new FusediffMlp('webgpu'), new FusediffMlp('wasm'), ...(skipPeers ? [] : [jaxjsMlp('webgpu')])];
for (const sys of stepSystems) {
  try {
    const ms = await timeTask(
      `${sys.system} ${sys.backend}`,
      () => sys.step(),
      () => sys.setup(),
    );
    stepRows.push({ system: sys.system, backend: sys.backend, samplesPerSec: (1000 / ms) * BATCH, msPerStep: ms });
    console.log(
      `reference step  ${sys.system.padEnd(16)} ${sys.backend.padEnd(26)} ${((1000 / ms) * BATCH).toFixed(0).padStart(8)} samples/s ` +
        `(${ms.toFixed(2)} ms, loss ${(await sys.loss()).toFixed(4)})`,
    );
  } catch (e) {
    console.log(`reference step  ${sys.system} ${sys.backend}: failed: ${(e as Error).message.split('\n')[0]}`);
  }
  await sys.dispose();
}

// ---- 2. matmul ------------------------------------------------------------------------------------------------
/** fusediff's matmul with both operands resident (fed back to themselves), as jax-js's arrays stay on the device. */
class ResidentMatmul implements MatmulPeer {
  readonly system = 'fusediff';
  constructor(readonly backend: BackendName) {}
  private exe?: Executable;
  async setup(n: number): Promise<void> {
    this.exe = compile(
      trace(({ a, b }) => ({ out: op.matmul(a, b), a, b }), { a: [n, n], b: [n, n] }),
      { backend: this.backend, feedback: { a: 'a', b: 'b' } },
    );
    const a = Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
    const b = Float32Array.from({ length: n * n }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
    await this.exe.runAsync({ a, b }, []);
  }
  async run(): Promise<void> {
    await this.exe!.runAsync({}, []); // resolves when the GPU has finished the kernel
  }
  async dispose(): Promise<void> {
    this.exe?.dispose();
  }
}
const sizes = gpuSized ? [256, 512, 1024, 2048, 4096] : quick ? [256] : [256, 512, 1024];
const matmul: { system: string; backend: string; n: number; gflops: number }[] = [];
for (const n of sizes)
  for (const m of [new ResidentMatmul('webgpu'), ...(skipPeers ? [] : [jaxjsMatmul('webgpu')])]) {
    try {
      const ms = await timeTask(
        `${m.system} ${m.backend} ${n}`,
        () => m.run(),
        () => m.setup(n),
      );
      const gflops = matmulFlops(n) / ms / 1e6;
      matmul.push({ system: m.system, backend: m.backend, n, gflops });
      console.log(
        `matmul ${String(n).padStart(4)}     ${m.system.padEnd(16)} ${m.backend.padEnd(26)} ${gflops.toFixed(2).padStart(8)} GFLOP/s`,
      );
    } catch (e) {
      console.log(`matmul ${n} ${m.system} ${m.backend}: failed: ${(e as Error).message.split('\n')[0]}`);
    }
    await m.dispose();
  }

// ---- 3. the UNet MSE step -------------------------------------------------------------------------------------
const unet: { backend: string; batch: number; msPerStep: number; kernels: number }[] = [];
const unetCase = spCostCases.find((c) => c.name === 'Unet')!;
for (const backend of ['webgpu', 'wasm'] as const) {
  const { mse, batch } = spCostSteps(unetCase, backend, {}, 'mse');
  const ms = await timeTask(
    `unet mse ${backend}`,
    async () => void (await mse.runAsync(batch)),
    async () => {},
  );
  unet.push({ backend, batch: unetCase.batch, msPerStep: ms, kernels: mse.executable.kernels.length });
  console.log(
    `UNet MSE step (batch ${unetCase.batch})  ${backend.padEnd(8)} ${ms.toFixed(1).padStart(8)} ms  ` +
      `(${mse.executable.kernels.length} kernels)`,
  );
  mse.dispose();
}

// ---- ratios ---------------------------------------------------------------------------------------------------
const find = (system: string, backend: string) => stepRows.find((r) => r.system.startsWith(system) && r.backend.startsWith(backend));
const wgsl = find('fusediff', 'webgpu');
const ratios = {
  referenceStepOverJaxjsWebgpu: wgsl && find('jax-js', 'webgpu') ? wgsl.samplesPerSec / find('jax-js', 'webgpu')!.samplesPerSec : undefined,
  referenceStepOverWasm: wgsl && find('fusediff', 'wasm') ? wgsl.samplesPerSec / find('fusediff', 'wasm')!.samplesPerSec : undefined,
  matmulOverJaxjsWebgpu: Object.fromEntries(
    sizes.flatMap((n) => {
      const ours = matmul.find((r) => r.n === n && r.system === 'fusediff');
      const theirs = matmul.find((r) => r.n === n && r.system.startsWith('jax-js'));
      return ours && theirs ? [[n, ours.gflops / theirs.gflops]] : [];
    }),
  ),
  unetWebgpuOverWasm: unet.length === 2 ? unet[1].msPerStep / unet[0].msPerStep : undefined,
};
console.log(`\nratios (higher: fusediff's WGSL faster): ${JSON.stringify(ratios)}`);
for (const n of notMeasured) console.log(`not measured: ${n}`);

const result = {
  adapter,
  cpu: os.cpus()[0]?.model,
  cores: os.cpus().length,
  node: process.version,
  quick,
  gpuSized,
  stepRows,
  matmul,
  unet,
  ratios,
  notMeasured,
};
const slug = ctx.description
  .toLowerCase()
  .replace(/[^a-z0-9]+/g, '-')
  .replace(/^-|-$/g, '')
  .slice(0, 48);
const out = process.argv.includes('--out') ? process.argv[process.argv.indexOf('--out') + 1] : undefined;
const file = out ?? new URL(`./results/webgpu-${slug}${quick ? '-quick' : ''}.json`, import.meta.url).pathname;
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(`${file}.tmp`, JSON.stringify(result, null, 2) + '\n');
renameSync(`${file}.tmp`, file);
console.log(`wrote ${file}`);
await shutdownBackends();
process.exit(0);
