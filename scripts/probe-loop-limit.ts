// Prints the loop limit of each gpu.js backend available here (test/support/loopProbe.ts) and, with --nonfinite,
// what it does with NaN and infinities (test/support/nonFiniteProbe.ts). Run under a display so that headlessgl is
// among them; --browser adds webgl2 in headless Chromium (SwiftShader):
//   sh scripts/with-display.sh node --import tsx scripts/probe-loop-limit.ts [--browser] [--nonfinite] [max]
import { describeProbe, probeAvailable, probeLoopLimit, type LoopProbe, type ProbeMode } from '../test/support/loopProbe.ts';
import { describeNonFinite, probeNonFinite } from '../test/support/nonFiniteProbe.ts';

const browser = process.argv.includes('--browser');
const nonFinite = process.argv.includes('--nonfinite');
const max = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 2 ** 22);
for (const mode of ['headlessgl', 'webasm', 'cpu'] as ProbeMode[]) {
  if (!probeAvailable(mode)) {
    console.log(`${mode}: not available here`);
    continue;
  }
  console.log(describeProbe(await probeLoopLimit(mode, { max })));
  if (nonFinite) console.log(describeNonFinite(mode, await probeNonFinite(mode)));
}

if (browser) {
  const { serve } = await import('../web/server.ts');
  const { launch } = await import('../test/browser/chromium.ts');
  const server = await serve({
    port: 0,
    entries: { '/probe.js': 'test/browser/loop-probe-entry.ts' },
    pages: { '/': '<!doctype html><meta charset="utf-8"><script type="module" src="/probe.js"></script>' },
  });
  const chromium = await launch();
  try {
    const page = await chromium.context.newPage();
    await page.goto(server.url);
    await page.waitForFunction(() => 'loopProbe' in window, null, { timeout: 30_000 });
    const available = await page.evaluate(() => (window as unknown as { loopProbe: { webgl2: boolean } }).loopProbe.webgl2);
    if (!available) console.log('webgl2: not available in the page');
    else {
      type Api = { probe(m: number): Promise<LoopProbe>; nonFinite(): Promise<Record<string, string[]>> };
      console.log(describeProbe(await page.evaluate((m) => (window as unknown as { loopProbe: Api }).loopProbe.probe(m), max)));
      if (nonFinite)
        console.log(
          describeNonFinite('webgl2', await page.evaluate(() => (window as unknown as { loopProbe: Api }).loopProbe.nonFinite())),
        );
    }
  } finally {
    await chromium.close();
    await server.close();
  }
}
