// `npm run soak [-- --steps N] [--plans P] [--backend B]`: runs the reference training step many times (10,000 by
// default) and checks that memory does not grow: the process heap and external (typed-array, wasm) memory after a
// forced GC, and the number of live device buffers, at the end must be within 1% of their values after step 100,
// and the backend's live kernels and GL textures must not change at all. Disposing the step must bring the
// backend's counts back to their values before the compile. Then P (200) small plans of different sizes are
// compiled, run and disposed: the counts after the 10th and the last must be the same.
// Typed-array backing stores are freed lazily, so a single reading swings by tens of MB between steps; each
// figure is therefore the peak over a window of 50 steps (steps 101-150, and the last 50), which a leak raises.
import {
  availableBackends,
  backendFor,
  compile,
  resolveBackend,
  shutdownBackends,
  type BackendCounters,
  type BackendRequest,
} from '../compiler/index.ts';
import * as op from '../dsl/ops.ts';
import { trace } from '../dsl/trace.ts';
import { compileReferenceStep } from '../workloads/referenceStep.ts';
import { eightGaussians } from '../workloads/reference.ts';

const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const steps = Number(arg('steps') ?? 10000);
const plans = Number(arg('plans') ?? 200);
const request = (arg('backend') ?? 'auto') as BackendRequest;
if (!Number.isInteger(steps) || steps < 200) throw new Error(`--steps must be an integer of at least 200, got ${arg('steps')}`);
if (!Number.isInteger(plans) || plans < 10) throw new Error(`--plans must be an integer of at least 10, got ${arg('plans')}`);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc (npm run soak does)');

const device = backendFor(resolveBackend(request).name);
const counts = (c: BackendCounters) =>
  `${c.kernels} kernels (${c.engineKernels} gpu.js kernel objects), ${c.textures} GL textures, ${c.buffers} uploaded buffers`;
const beforeCompile = device.counters();
const step = compileReferenceStep(request); // compiles on the shared backend of that name: `device`
console.log(
  `soak: ${steps} reference steps on ${step.executable.backend} (${step.executable.backendReason}); ` +
    `available: ${availableBackends().join(', ')}`,
);
const x0 = eightGaussians();
const measure = () => {
  gc();
  const m = process.memoryUsage();
  const c = device.counters();
  return { heap: m.heapUsed, external: m.external + m.arrayBuffers, buffers: step.liveBuffers(), kernels: c.kernels, textures: c.textures };
};
type Reading = ReturnType<typeof measure>;
const peak = (a: Reading | undefined, b: Reading): Reading =>
  a
    ? {
        heap: Math.max(a.heap, b.heap),
        external: Math.max(a.external, b.external),
        buffers: Math.max(a.buffers, b.buffers),
        kernels: Math.max(a.kernels, b.kernels),
        textures: Math.max(a.textures, b.textures),
      }
    : b;
let at100: Reading | undefined;
let end: Reading | undefined;
const start = performance.now();
let loss = NaN;
for (let s = 1; s <= steps; s++) {
  loss = await step.runAsync({ x0 });
  if (s > 100 && s <= 150) at100 = peak(at100, measure());
  if (s > steps - 50) end = peak(end, measure());
  if (s % 1000 === 0) console.log(`  step ${s}: loss ${loss.toFixed(4)}, ${((performance.now() - start) / s).toFixed(1)} ms/step`);
}
const pct = (a: number, b: number) => (100 * (b - a)) / a;
if (!at100 || !end) throw new Error('unreachable: steps > 150');
console.log(
  `steps 101-150 (peak):  heap ${(at100.heap / 1e6).toFixed(2)} MB, external ${(at100.external / 1e6).toFixed(2)} MB, ` +
    `live device buffers ${at100.buffers}, kernels ${at100.kernels}, GL textures ${at100.textures}`,
);
console.log(
  `last 50 steps (peak): heap ${(end.heap / 1e6).toFixed(2)} MB (${pct(at100.heap, end.heap).toFixed(2)}%), ` +
    `external ${(end.external / 1e6).toFixed(2)} MB (${pct(at100.external, end.external).toFixed(2)}%), ` +
    `live device buffers ${end.buffers}, kernels ${end.kernels}, GL textures ${end.textures}`,
);
const stable =
  pct(at100.heap, end.heap) <= 1 &&
  pct(at100.external, end.external) <= 1 &&
  end.buffers === at100.buffers &&
  end.kernels === at100.kernels &&
  end.textures === at100.textures;
console.log(
  stable
    ? 'soak ok: memory stable within 1%, kernels and textures unchanged'
    : 'soak FAILED: memory grew by more than 1%, or kernels or textures changed',
);

step.dispose();
const afterDispose = device.counters();
const freed = JSON.stringify(afterDispose) === JSON.stringify(beforeCompile);
console.log(
  `before the compile: ${counts(beforeCompile)}; ` +
    `after step.dispose(): ${counts(afterDispose)}${freed ? '' : ' (FAILED: not back to the counts before the compile)'}`,
);

// plans of different sizes share no kernel: each compile builds new ones, each dispose must free them
const smallGraph = (n: number) => trace(({ x, w }) => ({ y: op.tanh(op.matmul(x, w)), s: op.sum(op.mul(x, x)) }), { x: [4, n], w: [n, 3] });
const seen: Record<number, { running: BackendCounters; disposed: BackendCounters }> = {};
const planStart = performance.now();
for (let i = 1; i <= plans; i++) {
  const n = 2 + i;
  const exe = compile(smallGraph(n), { backend: device });
  exe.run({ x: new Float32Array(4 * n).fill(0.5), w: new Float32Array(3 * n).fill(0.25) });
  const running = device.counters();
  exe.dispose();
  if (i === 10 || i === plans) seen[i] = { running, disposed: device.counters() };
}
const flat = JSON.stringify(seen[10]) === JSON.stringify(seen[plans]);
console.log(
  `${plans} plans compiled, run and disposed in ${((performance.now() - planStart) / 1000).toFixed(1)} s` +
    `${flat ? '' : ' (FAILED: the counts grew)'}:`,
);
for (const i of [10, plans])
  console.log(`  plan ${i}: while it ran ${counts(seen[i].running)}; after its dispose ${counts(seen[i].disposed)}`);
await shutdownBackends();
process.exit(stable && freed && flat ? 0 : 1);
