// Sanity run of the peers: `npx tsx bench/peers/check.ts [--steps 20] [--warmup 3] [--only tfjs-wasm,jaxjs-wasm]
// [--no-matmul]`. For each peer: the loss on a fixed probe batch against the float64 reference (same model, same
// initial parameters), samples/s over timed steps, the loss trajectory, the probe loss after training (must fall),
// then matmul GFLOP/s at each workload size. Exits 1 when a peer disagrees with the reference or fails to train.
import os from 'node:os';
import { PEER_IDS, type PeerId, matmulPeer, mlpPeer } from './index.ts';
import { probeVerdict } from './probe.ts';
import { BATCH, MATMUL_SIZES, eightGaussians, initParams, matmulFlops, probeNoise, referenceLoss } from '../../workloads/reference.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const steps = Number(arg('steps') ?? 20);
const warmup = Number(arg('warmup') ?? 3);
const only = arg('only')?.split(',') ?? [...PEER_IDS];
for (const id of only)
  if (!(PEER_IDS as readonly string[]).includes(id)) throw new Error(`unknown peer '${id}'; valid: ${PEER_IDS.join(', ')}`);
const ids = only as PeerId[];
const matmul = !process.argv.includes('--no-matmul');

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x: number, d = 0): string => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

const load = (): string =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown cpu'}, ${os.cpus().length} cores, Node ${process.version}; load average ${load()}`);
console.log(`workload: MLP denoiser 66-256-256-256-2 (SiLU), batch ${BATCH}, MSE on eps, Adam; ${warmup} warmup + ${steps} timed steps\n`);

const probe = probeNoise();
const ref = referenceLoss(initParams(), eightGaussians(), probe.eps, probe.t);
let failed = false;
const rows: { id: string; system: string; backend: string; samplesPerSec: number }[] = [];

for (const id of ids) {
  const peer = mlpPeer(id);
  const t0 = performance.now();
  await peer.setup();
  const before = await peer.evalLoss(probe.eps, probe.t);
  for (let i = 0; i < warmup; i++) await peer.step();
  const setupMs = performance.now() - t0;
  const times: number[] = [],
    losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const s = performance.now();
    await peer.step();
    times.push(performance.now() - s);
    losses.push(await peer.loss());
  }
  const after = await peer.evalLoss(probe.eps, probe.t);
  const total = times.reduce((a, b) => a + b, 0) / 1000;
  const sps = (BATCH * steps) / total;
  rows.push({ id, system: peer.system, backend: peer.backend, samplesPerSec: sps });
  const { ok, relErr } = probeVerdict({ before, reference: ref, after, losses });
  failed ||= !ok;
  console.log(`${peer.system} / ${peer.backend} [${id}]`);
  console.log(`  noise: ${peer.noise}`);
  console.log(`  setup + ${warmup} warmup steps: ${fmt(setupMs)} ms`);
  console.log(`  probe loss before: ${before.toFixed(6)} (float64 reference ${ref.toFixed(6)}, rel err ${relErr.toExponential(1)})`);
  console.log(`  ${fmt(sps)} samples/s (mean ${fmt((total * 1000) / steps, 2)} ms/step, median ${fmt(median(times), 2)} ms)`);
  console.log(`  loss per step: ${losses.map((l) => l.toFixed(3)).join(' ')}`);
  console.log(`  probe loss after ${warmup + steps} steps: ${after.toFixed(6)} ${ok ? '(falls: trains)' : '<-- FAILED'}\n`);
  await peer.dispose();
}

if (matmul) {
  console.log(`matmul n x n x n f32, GFLOP/s (2 n^3 / mean seconds; 1 warmup, then >= 3 runs and >= 1 s):`);
  console.log(`  ${'peer'.padEnd(66)}${MATMUL_SIZES.map((n) => String(n).padStart(9)).join('')}`);
  for (const id of ids) {
    const peer = matmulPeer(id);
    const cells: string[] = [];
    for (const n of MATMUL_SIZES) {
      await peer.setup(n);
      await peer.run();
      let runs = 0;
      const start = performance.now();
      while (runs < 3 || performance.now() - start < 1000) {
        await peer.run();
        runs++;
      }
      const sec = (performance.now() - start) / 1000 / runs;
      cells.push(fmt(matmulFlops(n) / sec / 1e9, 1).padStart(9));
    }
    console.log(`  ${`${peer.system} / ${peer.backend}`.padEnd(66)}${cells.join('')}`);
    await peer.dispose();
  }
  console.log();
}

console.log('MLP step, samples/s:');
for (const r of rows) console.log(`  ${`${r.system} / ${r.backend}`.padEnd(66)}${fmt(r.samplesPerSec).padStart(9)}`);
console.log(`load average at the end: ${load()} (other work on the machine skews every number above)`);
if (failed) {
  console.error('\ncheck FAILED: a peer disagreed with the reference loss or did not train');
  process.exit(1);
}
