// `npm run bench`: fusediff and its peers on the same workloads, in one process, with tinybench.
//  1. the reference MLP denoiser training step (workloads/reference.ts): samples/s per system and backend;
//  2. square f32 matmul GFLOP/s at 256, 512, 1024;
//  3. one forward conv2d GFLOP/s (workloads/reference.ts CONV) against TF.js wasm and jax-js;
//  4. the memory plan of the reference step against one buffer per graph node;
//  5. the MSE and self-perceptual training steps of the MLP and the UNet (ms per step, SP / MSE) on one backend;
//  6. PyTorch on the CPU, 1 thread and every core (bench/peers/pytorch.py, in a child process), when python3 has torch;
//  7. the webgpu rows (bench/webgpu.ts, in a child process): fusediff's WGSL against jax-js on webgpu;
//  8. with --page, every system with every core in a Chromium page (bench/page/run.ts, in a child process).
// Every fusediff row carries its ratio to jax-js and to TF.js wasm (or to the best peer), the numbers the
// "Done when" of issue 12 is judged by.
// Writes bench/results/latest.json and prints the tables. `--quick` runs shorter (for a smoke test).
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { timer } from './timer.ts';
import { availableBackends, wasmFeatures, type BackendName } from '../compiler/index.ts';
import { FusediffMlp } from './fusediff/mlpDenoiser.ts';
import { compileReferenceStep } from '../workloads/referenceStep.ts';
import { FusediffMatmul } from './fusediff/matmul.ts';
import { FusediffConv } from './fusediff/conv.ts';
import { spCostCases, spCostSteps } from './fusediff/spCost.ts';
import type { ConvPeer, MatmulPeer, PeerSystem } from './peers/types.ts';
import { pytorchBackend, runPytorch, type PytorchResult } from './peers/pytorch.ts';
import { BATCH, CONV, MATMUL_SIZES, convFlops, matmulFlops } from '../workloads/reference.ts';

const quick = process.argv.includes('--quick');
const skipPeers = process.argv.includes('--no-peers');
// PyTorch (section 6) runs unless --no-peers or --no-pytorch; without torch it is skipped with the reason
const skipPytorch = skipPeers || process.argv.includes('--no-pytorch');
// the peers (TF.js, jax-js) are development dependencies: loaded only when asked for, so `--no-peers` runs without them
const peers = skipPeers
  ? undefined
  : await import('./peers/index.ts').catch((e: Error) => {
      console.error(
        `the peers (TF.js, jax-js) could not be loaded: ${e.message}\n` +
          'They are development dependencies of fusediff: run from a checkout after npm ci, install them, or pass --no-peers.',
      );
      process.exit(1);
    });
/** Running from the TypeScript sources (a checkout) rather than an installed package's dist/. */
const fromSource = import.meta.url.endsWith('.ts');
// --backend B restricts our rows to one backend (default: every backend available here but webgl2, browser-only)
const only = process.argv.includes('--backend') ? process.argv[process.argv.indexOf('--backend') + 1] : undefined;
const backends = availableBackends().filter(
  (b): b is BackendName => b !== 'webgl2' && (only === undefined || only === 'auto' || b === only),
);
if (backends.length === 0) throw new Error(`bench: backend '${only}' is not available here; available: ${availableBackends().join(', ')}`);
const machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  os: `${os.type()} ${os.release()}`,
};
console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}`);
// the wasm backend's multiply-add (compiler/wasm/features.ts): fused where the engine has relaxed SIMD; every wasm row says
const wasmMultiplyAdd = wasmFeatures();
console.log(`wasm multiply-add: ${wasmMultiplyAdd.fma ? 'fused (relaxed SIMD)' : 'multiply then add'}: ${wasmMultiplyAdd.fmaReason}`);
/** `fma` for a row of our wasm backend, nothing for others */
const fmaOf = (system: string, backend: string): { fma?: boolean } =>
  system === 'fusediff' && backend === 'wasm' ? { fma: wasmMultiplyAdd.fma } : {};
console.log(`fusediff backends available here: ${backends.join(', ')}\n`);

interface Row {
  system: string;
  backend: string;
  /** our wasm rows: whether its multiply-add was fused */
  fma?: boolean;
  samplesPerSec: number;
  msPerStep: number;
  ratioToBestPeer?: number;
  /** samples/s over jax-js's (the issue's reference peer) */
  ratioToJaxjs?: number;
  /** samples/s over PyTorch's on the CPU with one thread and with every core (section 6) */
  ratioToPytorch1Thread?: number;
  ratioToPytorchAllThreads?: number;
  peer: boolean;
  /** the peer's id (PEER_IDS), absent on fusediff's rows */
  peerId?: string;
  noise: string;
}

/** a / b, or undefined where there is no b (peers skipped or failed) */
const ratio = (a: number, b: number | undefined): number | undefined => (b !== undefined && b > 0 ? a / b : undefined);
const fmtRatio = (r: number | undefined): string => (r === undefined ? '    -' : `${r.toFixed(2)}x`.padStart(6));

const timeTask = timer(quick ? { time: 500, iterations: 2, warmups: 1 } : { time: 3000, iterations: 5, warmups: 3 });

// ---- 1. reference MLP step ------------------------------------------------------------------------------------
const systems: { sys: PeerSystem; peer: boolean; peerId?: string }[] = [
  ...backends.map((b) => ({ sys: new FusediffMlp(b) as PeerSystem, peer: false })),
  { sys: new FusediffMlp(backends[0], 'unfused'), peer: false },
  ...(peers ? peers.PEER_IDS.map((id) => ({ sys: peers.mlpPeer(id), peer: true, peerId: id })) : []),
];
const rows: Row[] = [];
for (const { sys, peer, peerId } of systems) {
  const ms = await timeTask(
    `${sys.system} ${sys.backend}`,
    () => sys.step(),
    () => sys.setup(),
  );
  const row: Row = {
    system: sys.system,
    backend: sys.backend,
    ...fmaOf(sys.system, sys.backend),
    samplesPerSec: (1000 / ms) * BATCH,
    msPerStep: ms,
    peer,
    peerId,
    noise: sys.noise,
  };
  rows.push(row);
  console.log(
    `${row.system.padEnd(24)} ${row.backend.padEnd(34)} ${row.samplesPerSec.toFixed(0).padStart(8)} samples/s  ` +
      `(${ms.toFixed(1)} ms/step, loss ${(await sys.loss()).toFixed(4)})`,
  );
  await sys.dispose();
}
const bestPeer = Math.max(...rows.filter((r) => r.peer).map((r) => r.samplesPerSec), 0);
const jaxjsMlp = rows.find((r) => r.peerId === 'jaxjs-wasm')?.samplesPerSec;
for (const r of rows) {
  r.ratioToBestPeer = ratio(r.samplesPerSec, bestPeer);
  r.ratioToJaxjs = ratio(r.samplesPerSec, jaxjsMlp);
}
if (!skipPeers) {
  console.log('\nMLP step, samples/s over the best peer and over jax-js:');
  for (const r of rows.filter((x) => !x.peer))
    console.log(
      `  ${r.system.padEnd(22)} ${r.backend.padEnd(34)} ${fmtRatio(r.ratioToBestPeer)} best peer  ${fmtRatio(r.ratioToJaxjs)} jax-js`,
    );
}
console.log('');

// ---- 2. matmul ------------------------------------------------------------------------------------------------
type Ratios = { ratioToJaxjs?: number; ratioToTfjsWasm?: number; ratioToPytorch1Thread?: number; ratioToPytorchAllThreads?: number };
const matmul: ({ system: string; backend: string; n: number; gflops: number; fma?: boolean } & Ratios)[] = [];
for (const n of quick ? [256] : MATMUL_SIZES) {
  const ms: { m: MatmulPeer; peerId?: string }[] = [
    ...backends.map((b) => ({ m: new FusediffMatmul(b) as MatmulPeer })),
    ...(peers ? peers.PEER_IDS.map((id) => ({ m: peers.matmulPeer(id), peerId: id })) : []),
  ];
  const sized: { row: (typeof matmul)[number]; peerId?: string }[] = [];
  for (const { m, peerId } of ms) {
    const t = await timeTask(
      `${m.system} ${m.backend} ${n}`,
      () => m.run(),
      () => m.setup(n),
    );
    const gflops = matmulFlops(n) / t / 1e6;
    const row = { system: m.system, backend: m.backend, n, gflops, ...fmaOf(m.system, m.backend) };
    matmul.push(row);
    sized.push({ row, peerId });
    console.log(`matmul ${String(n).padStart(4)}  ${m.system.padEnd(24)} ${m.backend.padEnd(34)} ${gflops.toFixed(2).padStart(7)} GFLOP/s`);
    await m.dispose();
  }
  // the ratios of fusediff's rows at this size
  const jax = sized.find((x) => x.peerId === 'jaxjs-wasm')?.row.gflops;
  const tfw = sized.find((x) => x.peerId === 'tfjs-wasm')?.row.gflops;
  for (const { row, peerId } of sized) {
    if (peerId !== undefined) continue;
    Object.assign(row, { ratioToJaxjs: ratio(row.gflops, jax), ratioToTfjsWasm: ratio(row.gflops, tfw) });
    if (!skipPeers)
      console.log(
        `matmul ${String(n).padStart(4)}  ${row.system.padEnd(24)} ${row.backend.padEnd(34)} ` +
          `${fmtRatio(row.ratioToJaxjs)} jax-js  ${fmtRatio(row.ratioToTfjsWasm)} TF.js wasm`,
      );
  }
}

// ---- 3. conv2d ------------------------------------------------------------------------------------------------
// Every backend of ours runs it: measured on this machine, one conv takes about 150 ms on cpu, webasm and
// headlessgl (0.4-0.5 GFLOP/s), short enough for tinybench's time budget.
const convRows: ({ system: string; backend: string; gflops: number; msPerConv: number; fma?: boolean } & Ratios)[] = [];
console.log('');
{
  const cs: { c: ConvPeer; peerId?: string }[] = [
    ...backends.map((b) => ({ c: new FusediffConv(b) as ConvPeer })),
    ...(peers ? peers.CONV_PEER_IDS.map((id) => ({ c: peers.convPeer(id), peerId: id })) : []),
  ];
  const timed: { row: (typeof convRows)[number]; peerId?: string }[] = [];
  for (const { c, peerId } of cs) {
    const t = await timeTask(
      `conv ${c.system} ${c.backend}`,
      () => c.run(),
      () => c.setup(CONV),
    );
    const row = { system: c.system, backend: c.backend, gflops: convFlops(CONV) / t / 1e6, msPerConv: t, ...fmaOf(c.system, c.backend) };
    convRows.push(row);
    timed.push({ row, peerId });
    console.log(
      `conv2d  ${c.system.padEnd(24)} ${c.backend.padEnd(34)} ${row.gflops.toFixed(2).padStart(7)} GFLOP/s  (${t.toFixed(2)} ms)`,
    );
    await c.dispose();
  }
  // jax-js: its faster mode (jit or eager) is the reference; TF.js: wasm
  const jaxRows = timed.filter((x) => x.peerId?.startsWith('jaxjs'));
  const jax = jaxRows.length > 0 ? Math.max(...jaxRows.map((x) => x.row.gflops)) : undefined;
  const tfw = timed.find((x) => x.peerId === 'tfjs-wasm')?.row.gflops;
  for (const { row } of timed) Object.assign(row, { ratioToJaxjs: ratio(row.gflops, jax), ratioToTfjsWasm: ratio(row.gflops, tfw) });
  if (!skipPeers)
    for (const { row, peerId } of timed)
      if (peerId === undefined)
        console.log(
          `conv2d  ${row.system.padEnd(24)} ${row.backend.padEnd(34)} ` +
            `${fmtRatio(row.ratioToJaxjs)} jax-js  ${fmtRatio(row.ratioToTfjsWasm)} TF.js wasm`,
        );
}
const conv = {
  workload: { ...CONV, layout: 'fusediff and jax-js: x NCHW, w OIHW; TF.js: x NHWC, w HWIO (tf.conv2d)', flops: convFlops(CONV) },
  fusediffBackends: backends,
  peers: peers ? [...peers.CONV_PEER_IDS] : [],
  jaxjsReference: 'the faster of jax-js jit and eager (ratioToJaxjs is against it)',
  rows: convRows,
};

// ---- 4. memory plan -------------------------------------------------------------------------------------------
const plan = compileReferenceStep(backends[0]).executable;
const memory = {
  backend: plan.backend,
  plannedBytes: plan.memory.plannedBytes,
  naiveBytes: plan.memory.naiveBytes,
  buffers: plan.memory.buffers,
  kernels: plan.kernels.length,
};
console.log(
  `\nmemory plan of the reference step: ${(memory.plannedBytes / 1e6).toFixed(2)} MB ` +
    `in ${memory.buffers} buffers vs ${(memory.naiveBytes / 1e6).toFixed(2)} MB for one buffer per node`,
);

// ---- 5. MSE and self-perceptual steps of the MLP and the UNet -------------------------------------------------
// On one backend: wasm where it is available (the issue's target), else webasm (a UNet step there takes seconds).
const spBackend: BackendName = backends.includes('wasm') ? 'wasm' : backends.includes('webasm') ? 'webasm' : backends[0];
const spOverMse: Record<string, number> = {};
// per model (lower-case name): <m>MseStepMs, <m>SpStepMs, <m>MseKernels, <m>SpKernels
const stepCost: Record<string, number> = {};
const spDetail: {
  model: string;
  backend: string;
  fma?: boolean;
  batch: number;
  mseMs: number;
  spMs: number;
  mseKernels: number;
  spKernels: number;
  /** PyTorch's MSE step time over ours (section 6, the UNet only): above 1, ours is faster */
  mseRatioToPytorch1Thread?: number;
  mseRatioToPytorchAllThreads?: number;
}[] = [];
for (const c of spCostCases) {
  const { mse, sp, batch } = spCostSteps(c, spBackend);
  const mseMs = await timeTask(
    `mse ${c.name}`,
    async () => void (await mse.runAsync(batch)),
    async () => {},
  );
  const spMs = await timeTask(
    `sp ${c.name}`,
    async () => void (await sp.runAsync(batch)),
    async () => {},
  );
  const [mseKernels, spKernels] = [mse.executable.kernels.length, sp.executable.kernels.length];
  spOverMse[`spOverMse${c.name}`] = spMs / mseMs;
  const m = c.name.toLowerCase();
  Object.assign(stepCost, {
    [`${m}MseStepMs`]: mseMs,
    [`${m}SpStepMs`]: spMs,
    [`${m}MseKernels`]: mseKernels,
    [`${m}SpKernels`]: spKernels,
  });
  spDetail.push({
    model: c.name,
    backend: mse.executable.backend,
    ...fmaOf('fusediff', mse.executable.backend),
    batch: c.batch,
    mseMs,
    spMs,
    mseKernels,
    spKernels,
  });
  console.log(
    `${c.name} step (batch ${c.batch}, ${mse.executable.backend}): MSE ${mseMs.toFixed(1)} ms, ` +
      `SP ${spMs.toFixed(1)} ms, SP / MSE ${(spMs / mseMs).toFixed(2)}x  (${mseKernels} vs ${spKernels} kernels)`,
  );
  mse.dispose();
  sp.dispose();
}

// ---- 6. PyTorch on the CPU: the native reference ------------------------------------------------------------------
// In a child process (bench/peers/pytorch.py), after everything above, so nothing else runs meanwhile: the same
// workloads written in PyTorch, f32, once on one thread and once on every core. Its rows join the tables above (peer
// rows, left out of ratioToBestPeer) and fusediff's rows get ratioToPytorch1Thread / ratioToPytorchAllThreads.
console.log('');
const pytorch: PytorchResult = skipPytorch
  ? { available: false, reason: `skipped (${skipPeers ? '--no-peers' : '--no-pytorch'})` }
  : runPytorch({ quick, matmulSizes: quick ? [256] : MATMUL_SIZES });
if (!pytorch.available) console.log(`PyTorch reference: ${pytorch.reason}; no PyTorch rows.`);
else {
  const [one, all] = [pytorch.runs[0], pytorch.runs[pytorch.runs.length - 1]];
  const system = `PyTorch ${pytorch.torch}`;
  const fmt = (x: number, d: number) => x.toFixed(d).padStart(9);
  console.log(`PyTorch ${pytorch.torch} on the CPU (${pytorch.python}; ${pytorch.blas}), median ms of several rounds:`);
  console.log(`  threads  MLP samples/s  ${one.matmul.map((m) => `mm ${m.n} GFLOP/s`).join('  ')}  conv GFLOP/s  UNet MSE ms`);
  for (const run of pytorch.runs) {
    const backend = pytorchBackend(run);
    rows.push({
      system,
      backend,
      samplesPerSec: run.mlp.samplesPerSec,
      msPerStep: run.mlp.medianMs,
      peer: true,
      peerId: `pytorch-${run.threads}t`,
      noise: 'torch.randn / torch.randint in each step, on the CPU',
    });
    for (const m of run.matmul) matmul.push({ system, backend, n: m.n, gflops: m.gflops });
    convRows.push({ system, backend: pytorchBackend(run, true), gflops: run.conv.gflops, msPerConv: run.conv.medianMs });
    console.log(
      `  ${String(run.threads).padStart(7)}  ${fmt(run.mlp.samplesPerSec, 0).padStart(13)}  ` +
        `${run.matmul.map((m) => fmt(m.gflops, 2).padStart(`mm ${m.n} GFLOP/s`.length)).join('  ')}  ` +
        `${fmt(run.conv.gflops, 2).padStart(12)}  ${fmt(run.unet.medianMs, 1).padStart(11)}`,
    );
  }
  for (const r of rows.filter((x) => !x.peer))
    Object.assign(r, {
      ratioToPytorch1Thread: ratio(r.samplesPerSec, one.mlp.samplesPerSec),
      ratioToPytorchAllThreads: ratio(r.samplesPerSec, all.mlp.samplesPerSec),
    });
  for (const r of matmul.filter((x) => x.system === 'fusediff'))
    Object.assign(r, {
      ratioToPytorch1Thread: ratio(r.gflops, one.matmul.find((m) => m.n === r.n)?.gflops),
      ratioToPytorchAllThreads: ratio(r.gflops, all.matmul.find((m) => m.n === r.n)?.gflops),
    });
  for (const r of convRows.filter((x) => x.system === 'fusediff'))
    Object.assign(r, {
      ratioToPytorch1Thread: ratio(r.gflops, one.conv.gflops),
      ratioToPytorchAllThreads: ratio(r.gflops, all.conv.gflops),
    });
  const unet = spDetail.find((d) => d.model === 'Unet');
  if (unet)
    Object.assign(unet, {
      mseRatioToPytorch1Thread: one.unet.medianMs / unet.mseMs,
      mseRatioToPytorchAllThreads: all.unet.medianMs / unet.mseMs,
    });
  const threads = `${one.threads} / ${all.threads} thread${all.threads === 1 ? '' : 's'}`;
  console.log(`fusediff over PyTorch (${threads}; above 1: fusediff is faster):`);
  for (const b of backends) {
    const mlp = rows.find((r) => !r.peer && r.backend === b);
    const mm = matmul.filter((r) => r.system === 'fusediff' && r.backend === b);
    const cv = convRows.find((r) => r.system === 'fusediff' && r.backend === b);
    const both = (x?: Ratios) => `${fmtRatio(x?.ratioToPytorch1Thread).trim()} / ${fmtRatio(x?.ratioToPytorchAllThreads).trim()}`;
    console.log(
      `  ${b.padEnd(11)} MLP ${both(mlp)}  ${mm.map((m) => `matmul ${m.n} ${both(m)}`).join('  ')}  conv ${both(cv)}` +
        (unet && unet.backend === b
          ? `  UNet MSE step ${fmtRatio(unet.mseRatioToPytorch1Thread).trim()} / ${fmtRatio(unet.mseRatioToPytorchAllThreads).trim()}`
          : ''),
    );
  }
  const c = pytorch.checks;
  console.log(
    `  same workloads: MLP loss on the probe batch ${c.mlpProbeLoss?.toFixed(6) ?? '-'} against ${c.mlpReferenceLoss.toFixed(6)} ` +
      `(float64) ${c.mlpSameFunction ? 'ok' : 'DIFFERS'}; parameters MLP ${c.mlpParams.join(' / ')}, ` +
      `UNet ${c.unetParams.join(' / ')} (PyTorch / fusediff) ${c.sameParamCounts ? 'ok' : 'DIFFER'}`,
  );
}

// ---- issue 12's "Done when", from the rows above (undefined where a row did not run, e.g. 512 under --quick) ------
const wasmMlp = rows.find((r) => !r.peer && r.backend === 'wasm');
const wasmMm512 = matmul.find((r) => r.system === 'fusediff' && r.backend === 'wasm' && r.n === 512);
const atLeast = (x: number | undefined, min: number) => (x === undefined ? undefined : x >= min);
const atMost = (x: number | undefined, max: number) => (x === undefined ? undefined : x <= max);
const targets = {
  mlpWasmRatioToJaxjs: wasmMlp?.ratioToJaxjs,
  mlpWasmRatioToJaxjsAtLeast1_5: atLeast(wasmMlp?.ratioToJaxjs, 1.5),
  matmul512WasmRatioToJaxjs: wasmMm512?.ratioToJaxjs,
  matmul512WasmRatioToTfjsWasm: wasmMm512?.ratioToTfjsWasm,
  matmul512WasmAtLeast1_5JaxjsAnd1TfjsWasm:
    wasmMm512?.ratioToJaxjs === undefined || wasmMm512.ratioToTfjsWasm === undefined
      ? undefined
      : wasmMm512.ratioToJaxjs >= 1.5 && wasmMm512.ratioToTfjsWasm >= 1,
  unetMseStepMsAtMost150: spBackend === 'wasm' ? atMost(stepCost.unetMseStepMs, 150) : undefined,
  spOverMseAtMost1_6:
    spBackend === 'wasm' ? (spOverMse.spOverMseMlp ?? Infinity) <= 1.6 && (spOverMse.spOverMseUnet ?? Infinity) <= 1.6 : undefined,
};
const yesNo = (b: boolean | undefined) => (b === undefined ? 'not measured' : b ? 'met' : 'NOT met');
console.log(`\nissue 12 targets (fusediff wasm):`);
console.log(`  MLP step >= 1.5x jax-js: ${fmtRatio(targets.mlpWasmRatioToJaxjs)}  ${yesNo(targets.mlpWasmRatioToJaxjsAtLeast1_5)}`);
console.log(
  `  matmul 512 >= 1.5x jax-js and >= TF.js wasm: ${fmtRatio(targets.matmul512WasmRatioToJaxjs)} ` +
    `/ ${fmtRatio(targets.matmul512WasmRatioToTfjsWasm)}  ${yesNo(targets.matmul512WasmAtLeast1_5JaxjsAnd1TfjsWasm)}`,
);
console.log(`  UNet MSE step <= 150 ms: ${stepCost.unetMseStepMs?.toFixed(1) ?? '-'} ms  ${yesNo(targets.unetMseStepMsAtMost150)}`);
console.log(
  `  SP / MSE <= 1.6x (MLP, UNet): ${fmtRatio(spOverMse.spOverMseMlp)} ` +
    `/ ${fmtRatio(spOverMse.spOverMseUnet)}  ${yesNo(targets.spOverMseAtMost1_6)}`,
);

const result = {
  machine: { ...machine, wasmMultiplyAdd },
  workload:
    `MLP denoiser step: [x_t (2), sinusoidal t-embedding (64)] -> 256 -> 256 -> 256 -> 2, ` +
    `SiLU, batch ${BATCH}, MSE on eps, Adam (workloads/reference.ts)`,
  quick,
  rows: rows.map(({ peer: _peer, peerId: _peerId, ...row }) => row), // the peer flags are the run's own bookkeeping
  matmul,
  conv,
  memory,
  ...spOverMse,
  spCostBackend: spBackend,
  ...stepCost,
  spCost: spDetail,
  pytorch,
  targets,
};
// ---- the webgpu rows (bench/webgpu.ts) in a child process: jax-js's webgpu device and Dawn's navigator shim stay out
// of this one. Without a GPU it runs on SwiftShader where Debian's chromium ships it (as the tests do).
const webgpuOut = `${os.tmpdir()}/fusediff-webgpu-bench-${process.pid}.json`;
const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';
const child = spawnSync(
  process.execPath,
  [
    ...(fromSource ? ['--import', 'tsx'] : []),
    new URL(fromSource ? './webgpu.ts' : './webgpu.js', import.meta.url).pathname,
    ...(quick ? ['--quick'] : []),
    ...(skipPeers ? ['--no-peers'] : []),
    '--out',
    webgpuOut,
  ],
  {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      ...process.env,
      ...(process.env.VK_ICD_FILENAMES === undefined && existsSync(swiftshader) ? { VK_ICD_FILENAMES: swiftshader } : {}),
    },
  },
);
const webgpu = existsSync(webgpuOut)
  ? (JSON.parse(readFileSync(webgpuOut, 'utf8')) as unknown)
  : { notRun: `bench/webgpu.ts exited ${child.status}` };
rmSync(webgpuOut, { force: true });
Object.assign(result, { webgpu });
// ---- --page: the same workloads with every core each in a Chromium page (bench/page/run.ts, npm run bench:page), in a
// child process, under `page` (from a checkout: the page is bundled from the sources)
if (process.argv.includes('--page')) {
  const pageOut = `${os.tmpdir()}/fusediff-page-bench-${process.pid}.json`;
  const script = new URL('./page/run.ts', import.meta.url).pathname;
  const args = ['--import', 'tsx', script, ...(quick ? ['--quick'] : []), '--out', pageOut];
  const run = fromSource ? spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] }) : undefined;
  const page = existsSync(pageOut)
    ? (JSON.parse(readFileSync(pageOut, 'utf8')) as unknown)
    : { notRun: run ? `bench/page/run.ts exited ${run.status}` : 'the page bench runs from a checkout only' };
  rmSync(pageOut, { force: true });
  Object.assign(result, { page });
}

// a checkout keeps its results in bench/results/; an installed package writes into the current folder, not node_modules
const resultsDir = fromSource ? new URL('./results/', import.meta.url) : pathToFileURL(`${process.cwd()}/fusediff-bench/`);
mkdirSync(resultsDir, { recursive: true });
const path = new URL(`${quick ? 'quick' : 'latest'}.json`, resultsDir);
writeFileSync(`${path.pathname}.tmp`, JSON.stringify(result, null, 2) + '\n');
renameSync(`${path.pathname}.tmp`, path.pathname);
console.log(`\nwrote ${path.pathname}`);
const best = rows.filter((r) => !r.peer).sort((a, b) => b.samplesPerSec - a.samplesPerSec)[0];
if (bestPeer > 0) console.log(`fusediff best (${best.backend}): ${(best.ratioToBestPeer ?? 0).toFixed(3)}x the best peer's samples/s`);
process.exit(0);
