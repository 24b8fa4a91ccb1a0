// The WebGPU benchmark: fusediff's own WGSL (the webgpu backend) against jax-js on webgpu and TensorFlow.js's webgpu
// backend, on the adapter this process finds (in Node through the webgpu package: each system asks Dawn for it), with
// fusediff's wasm backend on the same machine's CPU cores as the yardstick. `npm run bench` runs it on SwiftShader (a
// CPU: the ratios judge code generation and submission, not a GPU); `npm run bench:gpu` (--gpu) runs the sizes for a
// GPU machine, under 5 minutes, and writes bench/results/webgpu-<adapter>.json.
//   1. the reference MLP step (workloads/reference.ts): samples/s;
//   2. square f32 matmul GFLOP/s (operands and product resident on the device for every system);
//   3. the forward conv (workloads/reference.ts CONV, read back): GFLOP/s;
//   4. the UNet MSE and self-perceptual (SP) steps at batch 16 (ms per step): webgpu and wasm (no peer has the model).
// A system's rows are kept only when its results are right: each MLP step system's loss on the probe batch against the
// float64 reference (and falling after the timed steps), each matmul's sampled entries against float64 products.
// Not measured here, and said so in the output: gpu.js's WebGPU path (gpujs-webgpu) in Node, because gpu.js pins the
// webgpu package at 0.2.9, whose binary needs GLIBCXX_3.4.32 (Debian 12 has 3.4.30); `npm run bench:page` measures it
// against our WGSL in the page (bench/page/run.ts, the webgpu rows).
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { compile, gpuContext, prepareWebGPU, shutdownBackends, WgslBackend, type BackendName, type Executable } from '../compiler/index.ts';
import * as op from '../dsl/ops.ts';
import { trace } from '../dsl/trace.ts';
import { timeRuns } from '../train/inspectStep.ts';
import { BATCH, CONV, convFlops, eightGaussians, initParams, matmulFlops, probeNoise, referenceLoss } from '../workloads/reference.ts';
import { FusediffConv } from './fusediff/conv.ts';
import { FusediffMlp } from './fusediff/mlpDenoiser.ts';
import { spCostCases, spCostSteps } from './fusediff/spCost.ts';
import { checkMatmul } from './peers/matmulCheck.ts';
import { probeVerdict } from './peers/probe.ts';
import type { ConvPeer, MatmulPeer, PeerSystem } from './peers/types.ts';

const quick = process.argv.includes('--quick');
const gpuSized = process.argv.includes('--gpu');
const skipPeers = process.argv.includes('--no-peers');
// the peers (jax-js, TF.js) are development dependencies: loaded only when asked for, so `--no-peers` runs without them
// (an installed package's `fusediff bench --no-peers` runs this file from dist/ with no TF.js there)
const loadPeers = async () => {
  try {
    const [jax, tfjs] = await Promise.all([import('./peers/jaxjs.ts'), import('./peers/tfjsWebgpu.ts')]);
    return { ...jax, ...tfjs };
  } catch (e) {
    console.error(
      `the peers (TF.js, jax-js) could not be loaded: ${(e as Error).message}\n` +
        'They are development dependencies of fusediff: run from a checkout after npm ci, install them, or pass --no-peers.',
    );
    process.exit(1);
  }
};
const peers = skipPeers ? undefined : await loadPeers();
const timing = quick ? { time: 300, iterations: 2, warmups: 1 } : { time: 2000, iterations: 5, warmups: 3 };
/** A row whose second run takes longer than this is timed over that run and one more (on SwiftShader: minutes otherwise). */
const SLOW_MS = 1000;
interface Timed {
  ms: number;
  runs: number;
}
/**
 * Times fn after setup. A first run is not counted (it compiles pipelines; skipped when setup ran the workload itself,
 * as the matmul check does); the next decides: over SLOW_MS, the row is the mean of it and one more run (--quick: it
 * alone), otherwise tinybench times the row as every bench row.
 */
const timeRow = async (name: string, fn: () => Promise<void>, setup: () => Promise<void>, setupRan = false): Promise<Timed> => {
  await setup();
  if (!setupRan) await fn();
  const t0 = performance.now();
  await fn();
  const second = performance.now() - t0;
  if (second > SLOW_MS) {
    if (quick) return { ms: second, runs: 1 };
    const t1 = performance.now();
    await fn();
    return { ms: (second + performance.now() - t1) / 2, runs: 2 };
  }
  const stats = await timeRuns(fn, { time: timing.time, iterations: timing.iterations, warmup: Math.max(0, timing.warmups - 2), name });
  return { ms: stats.meanMs, runs: stats.runs };
};
const firstLine = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0];
/** Systems whose results were wrong or that failed: no speed is reported for them. */
const failed: { workload: string; system: string; backend: string; reason: string }[] = [];

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
    "(Debian 12: 3.4.30); npm run bench:page measures it against fusediff's WGSL in the page, in one run (page.json, webgpu rows)",
  'the UNet MSE and SP steps on jax-js and TF.js: no peer has the model (fusediff webgpu and wasm only)',
  'the conv rows are timed with their read-back and not checked against a reference (the MLP step and matmul rows are)',
];

// ---- 1. the reference MLP step --------------------------------------------------------------------------------
interface StepRow {
  system: string;
  backend: string;
  samplesPerSec: number;
  msPerStep: number;
  runs: number;
  /** the probe batch's loss at the initial parameters against the float64 reference, and after the timed steps */
  check: { probeLoss: number; reference: number; relErr: number; probeLossAfter: number };
}
const probe = probeNoise();
const reference = referenceLoss(initParams(), eightGaussians(), probe.eps, probe.t);
const stepRows: StepRow[] = [];
const stepSystems: PeerSystem[] = [
  new FusediffMlp('webgpu'),
  new FusediffMlp('wasm'),
  ...(peers ? [peers.jaxjsMlp('webgpu'), peers.tfjsWebgpuMlp()] : []),
];
for (const sys of stepSystems) {
  try {
    let probeLoss = NaN;
    const { ms, runs } = await timeRow(
      `${sys.system} ${sys.backend}`,
      () => sys.step(),
      async () => {
        await sys.setup();
        probeLoss = await sys.evalLoss(probe.eps, probe.t);
      },
    );
    const probeLossAfter = await sys.evalLoss(probe.eps, probe.t);
    const loss = await sys.loss();
    // the same function as float64 and it trains (bench/peers/probe.ts)
    const { ok, relErr, reason } = probeVerdict({ before: probeLoss, reference, after: probeLossAfter, losses: [loss] });
    if (!ok) throw new Error(`wrong results: ${reason}`);
    const row = { system: sys.system, backend: sys.backend, samplesPerSec: (1000 / ms) * BATCH, msPerStep: ms, runs };
    stepRows.push({ ...row, check: { probeLoss, reference, relErr, probeLossAfter } });
    console.log(
      `reference step  ${sys.system.padEnd(22)} ${sys.backend.padEnd(40)} ${row.samplesPerSec.toFixed(0).padStart(8)} samples/s ` +
        `(${ms.toFixed(2)} ms, ${runs} runs; loss ${loss.toFixed(4)}, probe rel err ${relErr.toExponential(1)})`,
    );
  } catch (e) {
    failed.push({ workload: 'reference step', system: sys.system, backend: sys.backend, reason: firstLine(e) });
    console.log(`reference step  ${sys.system} ${sys.backend}: failed: ${firstLine(e)}`);
  }
  await sys.dispose();
}

// ---- 2. matmul ------------------------------------------------------------------------------------------------
/** fusediff's matmul with both operands resident (fed back to themselves), as jax-js's arrays stay on the device. */
class ResidentMatmul implements MatmulPeer {
  readonly system = 'fusediff';
  readonly backend: string;
  /** `tiles`: the WGSL backend with workgroup tiles forced on or off (the tuner's choice is the plain 'webgpu' row) */
  constructor(
    private readonly on: BackendName,
    private readonly tiles?: boolean,
  ) {
    this.backend = tiles === undefined ? on : `${on} (workgroup tiles forced ${tiles ? 'on' : 'off'})`;
  }
  private exe?: Executable;
  private device?: WgslBackend;
  private a = new Float32Array(0);
  private b = new Float32Array(0);
  async setup(n: number): Promise<void> {
    if (this.tiles !== undefined) this.device = new WgslBackend(gpuContext(), { tiles: this.tiles });
    this.exe = compile(
      trace(({ a, b }) => ({ out: op.matmul(a, b), a, b }), { a: [n, n], b: [n, n] }),
      { backend: this.device ?? this.on, feedback: { a: 'a', b: 'b' } },
    );
    this.a = Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
    this.b = Float32Array.from({ length: n * n }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
    await this.exe.runAsync({ a: this.a, b: this.b }, []);
  }
  async run(): Promise<void> {
    await this.exe!.runAsync({}, []); // resolves when the GPU has finished the kernel
  }
  /** the operands fed back are the ones uploaded in setup (feedback copies them to themselves) */
  async readback(): Promise<{ a: Float32Array; b: Float32Array; c: Float32Array }> {
    const { out } = await this.exe!.runAsync({}, ['out']);
    return { a: this.a, b: this.b, c: Float32Array.from(out.data) };
  }
  async dispose(): Promise<void> {
    this.exe?.dispose();
    await this.device?.dispose();
  }
}
/** On a GPU machine, the matmul also with the tuner's other choice of workgroup tiles (compiler/webgpu/tiles.ts). */
const tileVariant = (): ResidentMatmul[] => {
  if (!gpuSized) return [];
  const tiles = ctx.software; // the tuner's default is tiles on a GPU, none on a software adapter: the other one
  return [new ResidentMatmul('webgpu', tiles)];
};
const sizes = gpuSized ? [256, 512, 1024, 2048, 4096] : quick ? [256] : [256, 512, 1024];
const matmul: { system: string; backend: string; n: number; gflops: number; runs: number; worstRelErr: number }[] = [];
for (const n of sizes)
  for (const m of [
    new ResidentMatmul('webgpu'),
    ...tileVariant(),
    ...(peers ? [peers.jaxjsMatmul('webgpu'), peers.tfjsWebgpuMatmul()] : []),
  ]) {
    try {
      let worstRelErr = NaN;
      const { ms, runs } = await timeRow(
        `${m.system} ${m.backend} ${n}`,
        () => m.run(),
        async () => {
          await m.setup(n);
          const check = checkMatmul(n, await m.readback!());
          if (!check.ok) throw new Error(`wrong product: ${check.firstBad} (${check.samples} entries checked)`);
          worstRelErr = check.worst;
        },
        true, // the checked product compiled the pipelines
      );
      const gflops = matmulFlops(n) / ms / 1e6;
      matmul.push({ system: m.system, backend: m.backend, n, gflops, runs, worstRelErr });
      console.log(
        `matmul ${String(n).padStart(4)}     ${m.system.padEnd(22)} ${m.backend.padEnd(40)} ${gflops.toFixed(2).padStart(8)} GFLOP/s ` +
          `(${runs} runs; checked, worst rel err ${worstRelErr.toExponential(1)})`,
      );
    } catch (e) {
      failed.push({ workload: `matmul ${n}`, system: m.system, backend: m.backend, reason: firstLine(e) });
      console.log(`matmul ${n} ${m.system} ${m.backend}: failed: ${firstLine(e)}`);
    }
    await m.dispose();
  }

// ---- 3. the forward conv --------------------------------------------------------------------------------------
const conv: { system: string; backend: string; gflops: number; ms: number; runs: number }[] = [];
const convSystems: ConvPeer[] = [
  new FusediffConv('webgpu'),
  ...(peers ? [peers.jaxjsConv('jit', 'webgpu'), peers.jaxjsConv('eager', 'webgpu'), peers.tfjsWebgpuConv()] : []),
];
for (const c of convSystems) {
  try {
    const { ms, runs } = await timeRow(
      `${c.system} ${c.backend} conv`,
      () => c.run(),
      () => c.setup(CONV),
    );
    const gflops = convFlops(CONV) / ms / 1e6;
    conv.push({ system: c.system, backend: c.backend, gflops, ms, runs });
    console.log(
      `conv             ${c.system.padEnd(22)} ${c.backend.padEnd(40)} ${gflops.toFixed(2).padStart(8)} GFLOP/s ` +
        `(${ms.toFixed(1)} ms, ${runs} runs)`,
    );
  } catch (e) {
    failed.push({ workload: 'conv', system: c.system, backend: c.backend, reason: firstLine(e) });
    console.log(`conv ${c.system} ${c.backend}: failed: ${firstLine(e)}`);
  }
  await c.dispose();
}

// ---- 4. the UNet MSE and self-perceptual steps ------------------------------------------------------------------
const unet: { backend: string; objective: 'mse' | 'sp'; batch: number; msPerStep: number; runs: number; kernels: number }[] = [];
const unetCase = spCostCases.find((c) => c.name === 'Unet')!;
for (const backend of ['webgpu', 'wasm'] as const) {
  const steps = spCostSteps(unetCase, backend);
  for (const objective of ['mse', 'sp'] as const) {
    const step = steps[objective];
    try {
      const { ms, runs } = await timeRow(
        `unet ${objective} ${backend}`,
        async () => void (await step.runAsync(steps.batch)),
        async () => {},
      );
      const kernels = step.executable.kernels.length;
      unet.push({ backend, objective, batch: unetCase.batch, msPerStep: ms, runs, kernels });
      console.log(
        `UNet ${objective.toUpperCase().padEnd(3)} step (batch ${unetCase.batch})  ${backend.padEnd(8)} ${ms.toFixed(1).padStart(8)} ms  ` +
          `(${kernels} kernels, ${runs} runs)`,
      );
    } catch (e) {
      failed.push({ workload: `UNet ${objective} step`, system: 'fusediff', backend, reason: firstLine(e) });
      console.log(`UNet ${objective} step ${backend}: failed: ${firstLine(e)}`);
    }
  }
  steps.mse.dispose();
  steps.sp.dispose();
}

// ---- ratios ---------------------------------------------------------------------------------------------------
const find = (system: string, backend: string) => stepRows.find((r) => r.system.startsWith(system) && r.backend.startsWith(backend));
const wgsl = find('fusediff', 'webgpu');
const stepOver = (system: string, backend: string) =>
  wgsl && find(system, backend) ? wgsl.samplesPerSec / find(system, backend)!.samplesPerSec : undefined;
const matmulOver = (peer: string) =>
  Object.fromEntries(
    sizes.flatMap((n) => {
      const ours = matmul.find((r) => r.n === n && r.system === 'fusediff');
      const theirs = matmul.find((r) => r.n === n && r.system.startsWith(peer));
      return ours && theirs ? [[n, ours.gflops / theirs.gflops]] : [];
    }),
  );
const ourConv = conv.find((r) => r.system === 'fusediff');
/** the peer's fastest conv row (jax-js: jit or eager, as bench/run.ts takes it) */
const convOver = (peer: string) => {
  const best = Math.max(0, ...conv.filter((r) => r.system.startsWith(peer)).map((r) => r.gflops));
  return ourConv && best > 0 ? ourConv.gflops / best : undefined;
};
const unetMs = (backend: string, objective: string) => unet.find((r) => r.backend === backend && r.objective === objective)?.msPerStep;
/** wasm's ms over webgpu's for one objective (higher: the WGSL step faster) */
const unetOver = (objective: string) => {
  const [gpu, cpu] = [unetMs('webgpu', objective), unetMs('wasm', objective)];
  return gpu && cpu ? cpu / gpu : undefined;
};
const ratios = {
  referenceStepOverJaxjsWebgpu: stepOver('jax-js', 'webgpu'),
  referenceStepOverTfjsWebgpu: stepOver('TensorFlow.js', 'webgpu'),
  referenceStepOverWasm: stepOver('fusediff', 'wasm'),
  matmulOverJaxjsWebgpu: matmulOver('jax-js'),
  matmulOverTfjsWebgpu: matmulOver('TensorFlow.js'),
  convOverJaxjsWebgpu: convOver('jax-js'),
  convOverTfjsWebgpu: convOver('TensorFlow.js'),
  unetWebgpuOverWasm: unetOver('mse'),
  unetSpWebgpuOverWasm: unetOver('sp'),
  /** the SP step's cost over the MSE step's on the WGSL backend (the paper's extra forward pass of the frozen copy) */
  unetSpOverMseWebgpu: unetMs('webgpu', 'sp') && unetMs('webgpu', 'mse') ? unetMs('webgpu', 'sp')! / unetMs('webgpu', 'mse')! : undefined,
};
console.log(`\nratios (higher: fusediff's WGSL faster): ${JSON.stringify(ratios)}`);
for (const n of notMeasured) console.log(`not measured: ${n}`);
for (const f of failed) console.log(`FAILED (no row): ${f.workload}, ${f.system} ${f.backend}: ${f.reason}`);

const result = {
  adapter,
  cpu: os.cpus()[0]?.model,
  cores: os.cpus().length,
  node: process.version,
  quick,
  gpuSized,
  howToRead:
    'stepRows: samples/s of the reference MLP step (batch ' +
    `${BATCH}), each checked first (check: its probe loss against float64, and after the timed steps); matmul: GFLOP/s ` +
    'with operands and product on the device, each checked on sampled entries (worstRelErr: |c - float64| / sum |a b|); ' +
    `conv: GFLOP/s of workloads/reference.ts CONV (${(convFlops(CONV) / 1e6).toFixed(1)} MFLOP) with the read-back; ` +
    `runs: timed runs (a row over ${SLOW_MS} ms per run is the mean of 2 after an untimed one, for matmul the checked ` +
    "product; else tinybench). ratios: fusediff's webgpu over the peer (higher: ours faster; conv: over the peer's " +
    'faster of jit and eager). failed: systems that gave wrong results or errors, with no speed.',
  stepRows,
  matmul,
  conv,
  unet,
  ratios,
  failed,
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
