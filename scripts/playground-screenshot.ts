// Makes docs/playground.png: serves the playground, trains 600 MSE steps and 200 SP fine-tuning steps on
// 8 Gaussians (MLP width 64; 1000 samples, DDIM 50) in headless Chromium on WebGL2, and screenshots the page.
// `node --import tsx scripts/playground-screenshot.ts [out.png]` (about 5 minutes on SwiftShader).
import { launch } from '../test/browser/chromium.ts';
import { serve } from '../web/server.ts';

type State = { step: number; running: boolean; sampling: boolean; backend: string; samples?: unknown };
const out = process.argv[2] ?? 'docs/playground.png';
const server = await serve({ port: 0 });
const browser = await launch();
try {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(server.url);
  await page.waitForFunction(() => (window as unknown as { fusediffPlayground?: unknown }).fusediffPlayground !== undefined);
  const state = () => page.evaluate(() => (window as unknown as { fusediffPlayground: { state(): State } }).fusediffPlayground.state());
  await page.selectOption('#hidden', '64');
  await page.selectOption('#count', '1000');
  await page.selectOption('#steps', '50');
  const train = async (n: number) => {
    const target = (await state()).step + n;
    await page.click('#train');
    await page.waitForFunction(
      (t) => (window as unknown as { fusediffPlayground: { state(): State } }).fusediffPlayground.state().step >= t,
      target,
      { timeout: 0, polling: 500 },
    );
    await page.click('#train');
    await page.waitForFunction(
      () => {
        const s = (window as unknown as { fusediffPlayground: { state(): State } }).fusediffPlayground.state();
        return !s.running && !s.sampling;
      },
      null,
      { timeout: 0 },
    );
  };
  await train(600);
  console.log('after MSE:', JSON.stringify((await state()).samples));
  await page.check('input[name="objective"][value="sp"]');
  await train(200);
  const s = await state();
  console.log('after SP: ', JSON.stringify(s.samples), 'backend', s.backend);
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await server.close();
}
