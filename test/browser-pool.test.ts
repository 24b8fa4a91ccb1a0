// Worker pools in a page end with their plans: a wasm plan in a cross-origin isolated page splits its kernels over
// Web Workers (compiler/wasm/threads.ts), and its dispose() (or shutdownBackends) terminates them. The page
// (test/browser/pool-entry.ts) counts live Workers through a wrapped Worker constructor while plans are compiled, run
// and disposed: by compile() on a backend of their own and on the shared one, and by the bench's fusediff classes as
// `npm run bench:page` runs them (before, FusediffMatmul and FusediffMlp never disposed their plans: each setup left
// its workers idle in the page). Node's worker threads: test/dispose.test.ts. Headless Chromium as in
// test/browser.test.ts; without Chromium the test is skipped locally and FAILS in CI (CI=true).
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import type { Page } from 'playwright-core';
import { serve, type Playground } from '../web/server.ts';
import { browserTestOptions, launch, type Browser } from './browser/chromium.ts';
import type { PoolApi } from './browser/pool-entry.ts';

const options = browserTestOptions();
let server: Playground | undefined;
let browser: Browser | undefined;
let page: Page;
const pageErrors: string[] = [];

before(async () => {
  if (options.skip) return;
  server = await serve({
    port: 0,
    entries: { '/pool.js': 'test/browser/pool-entry.ts' },
    pages: { '/': '<!doctype html><meta charset="utf-8"><title>fusediff pools</title><script type="module" src="/pool.js"></script>' },
  });
  browser = await launch();
  page = await browser.context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(server.url);
  await page
    .waitForFunction(() => (window as unknown as { fusediffPool?: unknown }).fusediffPool !== undefined, null, { timeout: 60_000 })
    .catch((e: Error) => {
      throw new Error(`the page did not start: ${e.message}; page errors: ${pageErrors.join('; ') || 'none'}`);
    });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

const inPage = <K extends 'library' | 'bench'>(name: K): ReturnType<PoolApi[K]> =>
  page.evaluate(
    (n: string) => (window as unknown as { fusediffPool: Record<string, () => Promise<unknown>> }).fusediffPool[n](),
    name,
  ) as ReturnType<PoolApi[K]>;

test('wasm in the page: disposing plans and shutdownBackends terminate every Web Worker they started', options, async (t: TestContext) => {
  assert.equal(await page.evaluate(() => (window as unknown as { fusediffPool: PoolApi }).fusediffPool.crossOriginIsolated), true);
  const got = await inPage('library');
  t.diagnostic(JSON.stringify(got));
  assert.deepEqual(pageErrors, []);
  assert.ok(
    got.sums.every((s) => Number.isFinite(s) && s > 0),
    'the plans ran',
  );
  // 3 threads: the page and 2 workers per plan
  assert.equal(got.whileLive, 8, 'four live plans, two workers each');
  assert.equal(got.afterDispose, 0, "dispose() ends each plan's workers");
  assert.equal(got.beforeShutdown, 2, "a plan on the shared backend (the page's 3 cores): two workers");
  assert.equal(got.afterShutdown, 0, "shutdownBackends ends the shared backend's plans and their workers");
  assert.equal(got.started, 10);
});

test("the bench's fusediff classes end their plans' Web Workers on dispose (npm run bench:page runs them)", options, async (t) => {
  const got = await inPage('bench');
  for (const r of got.rows) t.diagnostic(`${r.name}: ${r.started} workers started, ${r.whileLive} live, ${r.afterDispose} after dispose`);
  assert.deepEqual(pageErrors, []);
  for (const r of got.rows) {
    assert.ok(r.whileLive >= 2 && r.whileLive % 2 === 0, `${r.name}: the plans had workers (${r.whileLive} live)`);
    assert.equal(r.afterDispose, 0, `${r.name}: ${r.afterDispose} workers left idle after dispose (${r.started} started)`);
  }
  // one plan at a time: a second setup ends the first plan (and its workers) before compiling the next
  assert.equal(got.rows[0].whileLive, 2, `FusediffMatmul's second setup leaves only its own plan's workers`);
  assert.equal(got.afterShutdown, 0);
});
