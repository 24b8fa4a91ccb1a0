// Prints the loop limit of each gpu.js backend available here (test/support/loopProbe.ts). Run under a display so
// that headlessgl is among them:  sh scripts/with-display.sh node --import tsx scripts/probe-loop-limit.ts [max]
import { describeProbe, probeAvailable, probeLoopLimit, type ProbeMode } from '../test/support/loopProbe.ts';

const max = Number(process.argv[2] ?? 2 ** 22);
for (const mode of ['headlessgl', 'webasm', 'cpu'] as ProbeMode[]) {
  if (!probeAvailable(mode)) {
    console.log(`${mode}: not available here`);
    continue;
  }
  console.log(describeProbe(await probeLoopLimit(mode, { max })));
}
