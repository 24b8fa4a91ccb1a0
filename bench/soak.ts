// `npm run soak [-- --steps N] [--backend B]`: runs the reference training step many times (10,000 by default)
// and checks that memory does not grow: the process heap and external (typed-array, wasm) memory after a forced
// GC, and the number of live device buffers, at the end must be within 1% of their values after step 100.
// Typed-array backing stores are freed lazily, so a single reading swings by tens of MB between steps; each
// figure is therefore the peak over a window of 50 steps (steps 101-150, and the last 50), which a leak raises.
import { availableBackends, shutdownBackends, type BackendRequest } from '../compiler/index.ts';
import { compileReferenceStep } from '../workloads/referenceStep.ts';
import { eightGaussians } from '../workloads/reference.ts';

const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const steps = Number(arg('steps') ?? 10000);
const backend = (arg('backend') ?? 'auto') as BackendRequest;
if (!Number.isInteger(steps) || steps < 200) throw new Error(`--steps must be an integer of at least 200, got ${arg('steps')}`);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc (npm run soak does)');

const step = compileReferenceStep(backend);
console.log(`soak: ${steps} reference steps on ${step.executable.backend} (${step.executable.backendReason}); available: ${availableBackends().join(', ')}`);
const x0 = eightGaussians();
const measure = () => {
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, external: m.external + m.arrayBuffers, buffers: step.liveBuffers() };
};
type Reading = ReturnType<typeof measure>;
const peak = (a: Reading | undefined, b: Reading): Reading =>
  a ? { heap: Math.max(a.heap, b.heap), external: Math.max(a.external, b.external), buffers: Math.max(a.buffers, b.buffers) } : b;
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
console.log(`steps 101-150 (peak):  heap ${(at100.heap / 1e6).toFixed(2)} MB, external ${(at100.external / 1e6).toFixed(2)} MB, live device buffers ${at100.buffers}`);
console.log(`last 50 steps (peak): heap ${(end.heap / 1e6).toFixed(2)} MB (${pct(at100.heap, end.heap).toFixed(2)}%), external ${(end.external / 1e6).toFixed(2)} MB (${pct(at100.external, end.external).toFixed(2)}%), live device buffers ${end.buffers}`);
const ok = pct(at100.heap, end.heap) <= 1 && pct(at100.external, end.external) <= 1 && end.buffers === at100.buffers;
console.log(ok ? 'soak ok: memory stable within 1%' : 'soak FAILED: memory grew by more than 1%');
await shutdownBackends();
process.exit(ok ? 0 : 1);
