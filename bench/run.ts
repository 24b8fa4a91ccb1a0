// `npm run bench`: fusediff and its peers on the same workloads, in one process, with tinybench.
//  1. the reference MLP denoiser training step (workloads/reference.ts): samples/s per system and backend;
//  2. square f32 matmul GFLOP/s at 256, 512, 1024;
//  3. the memory plan of the reference step against one buffer per graph node.
// Writes bench/results/latest.json and prints the tables. `--quick` runs shorter (for a smoke test).
import { writeFileSync, mkdirSync, renameSync } from 'node:fs';
import os from 'node:os';
import { Bench } from 'tinybench';
import { availableBackends, type BackendName } from '../compiler/index.ts';
import { FusediffMlp } from './fusediff/mlpDenoiser.ts';
import { compileReferenceStep } from '../workloads/referenceStep.ts';
import { FusediffMatmul } from './fusediff/matmul.ts';
import { spCostCases, spCostSteps } from './fusediff/spCost.ts';
import { PEER_IDS, matmulPeer, mlpPeer } from './peers/index.ts';
import type { MatmulPeer, PeerSystem } from './peers/types.ts';
import { BATCH, MATMUL_SIZES, matmulFlops } from '../workloads/reference.ts';

const quick = process.argv.includes('--quick');
const skipPeers = process.argv.includes('--no-peers');
// --backend B restricts our rows to one backend (default: every backend available here but webgl2, browser-only)
const only = process.argv.includes('--backend') ? process.argv[process.argv.indexOf('--backend') + 1] : undefined;
const backends = availableBackends().filter((b): b is BackendName => b !== 'webgl2' && (only === undefined || only === 'auto' || b === only));
if (backends.length === 0) throw new Error(`bench: backend '${only}' is not available here; available: ${availableBackends().join(', ')}`);
const machine = { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, os: `${os.type()} ${os.release()}` };
console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}`);
console.log(`fusediff backends available here: ${backends.join(', ')}\n`);

interface Row {
  system: string;
  backend: string;
  samplesPerSec: number;
  msPerStep: number;
  ratioToBestPeer?: number;
  peer: boolean;
  noise: string;
}

const timeTask = async (name: string, fn: () => Promise<void>, setup: () => Promise<void>): Promise<number> => {
  await setup();
  const bench = new Bench({ time: quick ? 500 : 3000, iterations: quick ? 2 : 5, warmupTime: 0, warmupIterations: quick ? 1 : 3 } as never);
  bench.add(name, fn);
  await bench.run();
  const r = bench.tasks[0].result as { state: string; latency?: { mean: number }; error?: unknown };
  if (r.state !== 'completed' || !r.latency) throw new Error(`${name}: ${r.state} ${String(r.error ?? '')}`);
  return r.latency.mean;
};

// ---- 1. reference MLP step ------------------------------------------------------------------------------------
const systems: { sys: PeerSystem; peer: boolean }[] = [
  ...backends.map((b) => ({ sys: new FusediffMlp(b) as PeerSystem, peer: false })),
  { sys: new FusediffMlp(backends[0], 'unfused'), peer: false },
  ...(skipPeers ? [] : PEER_IDS.map((id) => ({ sys: mlpPeer(id), peer: true }))),
];
const rows: Row[] = [];
for (const { sys, peer } of systems) {
  const ms = await timeTask(`${sys.system} ${sys.backend}`, () => sys.step(), () => sys.setup());
  const row = { system: sys.system, backend: sys.backend, samplesPerSec: (1000 / ms) * BATCH, msPerStep: ms, peer, noise: sys.noise };
  rows.push(row);
  console.log(`${row.system.padEnd(24)} ${row.backend.padEnd(34)} ${row.samplesPerSec.toFixed(0).padStart(8)} samples/s  (${ms.toFixed(1)} ms/step, loss ${(await sys.loss()).toFixed(4)})`);
  await sys.dispose();
}
const bestPeer = Math.max(...rows.filter((r) => r.peer).map((r) => r.samplesPerSec), 0);
for (const r of rows) if (bestPeer > 0) r.ratioToBestPeer = r.samplesPerSec / bestPeer;

// ---- 2. matmul ------------------------------------------------------------------------------------------------
const matmul: { system: string; backend: string; n: number; gflops: number }[] = [];
for (const n of quick ? [256] : MATMUL_SIZES) {
  const ms: MatmulPeer[] = [...backends.map((b) => new FusediffMatmul(b)), ...(skipPeers ? [] : PEER_IDS.map((id) => matmulPeer(id)))];
  for (const m of ms) {
    const t = await timeTask(`${m.system} ${m.backend} ${n}`, () => m.run(), () => m.setup(n));
    const gflops = matmulFlops(n) / t / 1e6;
    matmul.push({ system: m.system, backend: m.backend, n, gflops });
    console.log(`matmul ${String(n).padStart(4)}  ${m.system.padEnd(24)} ${m.backend.padEnd(34)} ${gflops.toFixed(2).padStart(7)} GFLOP/s`);
    await m.dispose();
  }
}

// ---- 3. memory plan -------------------------------------------------------------------------------------------
const plan = compileReferenceStep(backends[0]).executable;
const memory = { backend: plan.backend, plannedBytes: plan.memory.plannedBytes, naiveBytes: plan.memory.naiveBytes, buffers: plan.memory.buffers, kernels: plan.kernels.length };
console.log(`\nmemory plan of the reference step: ${(memory.plannedBytes / 1e6).toFixed(2)} MB in ${memory.buffers} buffers vs ${(memory.naiveBytes / 1e6).toFixed(2)} MB for one buffer per node`);

// ---- 4. self-perceptual step cost ----------------------------------------------------------------------------
const spOverMse: Record<string, number> = {};
const spDetail: { model: string; backend: string; batch: number; mseMs: number; spMs: number; mseKernels: number; spKernels: number }[] = [];
for (const c of spCostCases) {
  const { mse, sp, batch } = spCostSteps(c, backends.includes('webasm') ? 'webasm' : backends[0]);
  const mseMs = await timeTask(`mse ${c.name}`, async () => void (await mse.runAsync(batch)), async () => {});
  const spMs = await timeTask(`sp ${c.name}`, async () => void (await sp.runAsync(batch)), async () => {});
  spOverMse[`spOverMse${c.name}`] = spMs / mseMs;
  spDetail.push({ model: c.name, backend: mse.executable.backend, batch: c.batch, mseMs, spMs, mseKernels: mse.executable.kernels.length, spKernels: sp.executable.kernels.length });
  console.log(`SP / MSE step cost, ${c.name} (batch ${c.batch}, ${mse.executable.backend}): ${(spMs / mseMs).toFixed(2)}x  (${mseMs.toFixed(1)} ms vs ${spMs.toFixed(1)} ms; ${mse.executable.kernels.length} vs ${sp.executable.kernels.length} kernels)`);
}

const result = {
  machine,
  workload: `MLP denoiser step: [x_t (2), sinusoidal t-embedding (64)] -> 256 -> 256 -> 256 -> 2, SiLU, batch ${BATCH}, MSE on eps, Adam (workloads/reference.ts)`,
  quick,
  rows: rows.map(({ system, backend, samplesPerSec, ratioToBestPeer, msPerStep, noise }) => ({ system, backend, samplesPerSec, ratioToBestPeer, msPerStep, noise })),
  matmul,
  memory,
  ...spOverMse,
  spCost: spDetail,
};
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const path = new URL(`./results/${quick ? 'quick' : 'latest'}.json`, import.meta.url);
writeFileSync(`${path.pathname}.tmp`, JSON.stringify(result, null, 2) + '\n');
renameSync(`${path.pathname}.tmp`, path.pathname);
console.log(`\nwrote ${path.pathname}`);
const best = rows.filter((r) => !r.peer).sort((a, b) => b.samplesPerSec - a.samplesPerSec)[0];
if (bestPeer > 0) console.log(`fusediff best (${best.backend}): ${(best.ratioToBestPeer ?? 0).toFixed(3)}x the best peer's samples/s`);
process.exit(0);
