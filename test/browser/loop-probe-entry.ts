// The browser side of `scripts/probe-loop-limit.ts --browser`: the loop-limit and non-finite probes
// (test/support/loopProbe.ts, test/support/nonFiniteProbe.ts) on gpu.js's webgl2 backend in the page (SwiftShader in
// headless Chromium).
import { probeAvailable, probeLoopLimit } from '../support/loopProbe.ts';
import { probeNonFinite } from '../support/nonFiniteProbe.ts';

const api = {
  webgl2: probeAvailable('webgl2'),
  probe: (max: number) => probeLoopLimit('webgl2', { max }),
  nonFinite: () => probeNonFinite('webgl2'),
};

export type LoopProbeApi = typeof api;
(window as unknown as { loopProbe: LoopProbeApi }).loopProbe = api;
