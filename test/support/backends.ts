// The one guard for "this backend must run here". A test file names the backends it covers; the guard answers with
// those available in this process. A listed backend that is not available is never dropped silently: under CI=true
// (the CI run, where xvfb-run, the gl package and SwiftShader are installed) it is a failing test that names the
// backend and why it is missing; elsewhere (a laptop without a display) it is a skipped test with that reason, shown
// by the reporter. webgpu is asked for asynchronously (its device is acquired once), so the guard is async; a file
// that lists webgpu must also dispose the device when it ends (after(shutdownBackends)), else Dawn keeps Node running.
import { test } from 'node:test';
import { isAvailable, prepareWebGPU, probeBackend, type BackendName } from '../../compiler/index.ts';

/** The Node backends of the compiled-plan suites: gpu.js's cpu, webasm and headless-gl, and the compiler's own wasm. */
export const nodeBackends = ['cpu', 'webasm', 'headlessgl', 'wasm'] as const satisfies readonly BackendName[];
/** The same and the compiler's WGSL backend (SwiftShader in CI). */
export const nodeBackendsWithWebGPU = [...nodeBackends, 'webgpu'] as const satisfies readonly BackendName[];

export const inCI = (): boolean => process.env.CI === 'true';

/**
 * The backends a CI pass says it cannot have, named in FUSEDIFF_CI_WITHOUT (comma-separated): .ci/run's second pass,
 * on another Node version, names headlessgl, whose native module (the gl package) is built for the first Node's ABI
 * only. Their tests skip with that reason instead of failing; every other backend must still run.
 */
export const ciWithout = (): string[] =>
  (process.env.FUSEDIFF_CI_WITHOUT ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

/** Whether `backend` must run here: under CI=true, unless FUSEDIFF_CI_WITHOUT names it. */
export const requiredInCI = (backend: BackendName): boolean => inCI() && !ciWithout().includes(backend);

/**
 * The backends of `listed` that run here, in the order listed. For each one that does not: under CI=true a test that
 * fails naming it; elsewhere a skipped test saying why. `file` names the suite in those tests' titles.
 */
export const backendsUnderTest = async <const B extends BackendName>(file: string, listed: readonly B[]): Promise<B[]> => {
  if (listed.includes('webgpu' as B)) await prepareWebGPU();
  const here: B[] = [];
  for (const b of listed) {
    if (isAvailable(b)) {
      here.push(b);
      continue;
    }
    const reason = probeBackend(b).reason;
    if (requiredInCI(b))
      test(`${file}: backend ${b} must run in CI`, () => {
        throw new Error(`${file} lists backend ${b}, which is not available here: ${reason}`);
      });
    else
      test(
        `${file}: backend ${b}`,
        { skip: `not available here (${reason}); ${inCI() ? 'FUSEDIFF_CI_WITHOUT names it' : 'under CI=true this fails'}` },
        () => {},
      );
  }
  return here;
};
