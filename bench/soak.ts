// `npm run soak [-- --steps N] [--backend B]`: runs the reference training step many times (10,000 by default)
// and checks that memory does not grow: the process heap and external (typed-array) memory after a forced GC,
// and the number of live device buffers, after the last step must be within 1% of their values after step 100.
import { availableBackends, type BackendRequest } from '../compiler/runtime/backends.ts';
import { compileReferenceStep } from './fusediff/mlpDenoiser.ts';
import { eightGaussians } from './peers/workload.ts';

const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const steps = Number(arg('steps') ?? 10000);
const backend = (arg('backend') ?? 'auto') as BackendRequest;
if (!Number.isInteger(steps) || steps <= 100) throw new Error(`--steps must be an integer above 100, got ${arg('steps')}`);
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
let at100 = measure();
const start = performance.now();
let loss = NaN;
for (let s = 1; s <= steps; s++) {
  loss = step.run({ x0 });
  if (s === 100) at100 = measure();
  if (s % 1000 === 0) console.log(`  step ${s}: loss ${loss.toFixed(4)}, ${((performance.now() - start) / s).toFixed(1)} ms/step`);
}
const end = measure();
const pct = (a: number, b: number) => (100 * (b - a)) / a;
console.log(`after step 100:  heap ${(at100.heap / 1e6).toFixed(2)} MB, external ${(at100.external / 1e6).toFixed(2)} MB, live device buffers ${at100.buffers}`);
console.log(`after step ${steps}: heap ${(end.heap / 1e6).toFixed(2)} MB (${pct(at100.heap, end.heap).toFixed(2)}%), external ${(end.external / 1e6).toFixed(2)} MB (${pct(at100.external, end.external).toFixed(2)}%), live device buffers ${end.buffers}`);
const ok = pct(at100.heap, end.heap) <= 1 && pct(at100.external, end.external) <= 1 && end.buffers === at100.buffers;
console.log(ok ? 'soak ok: memory stable within 1%' : 'soak FAILED: memory grew by more than 1%');
process.exit(ok ? 0 : 1);
