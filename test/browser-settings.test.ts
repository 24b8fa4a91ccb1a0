// The playground applies every setting chosen while it trains or samples (issue 25): the data set, the MLP width,
// class conditioning, the objective and the backend, chosen mid-training and mid-sampling, end up in the new session,
// and the controls show what the session runs (before, the redraws while the page stopped the loop wrote the old
// session's values back into the controls, and the change then rebuilt the old model). Headless Chromium as in
// test/browser.test.ts; without Chromium the test is skipped locally and FAILS in CI (CI=true).
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import type { Page } from 'playwright-core';
import { serve, type Playground } from '../web/server.ts';
import { browserTestOptions, launch, type Browser } from './browser/chromium.ts';

type PageState = {
  running: boolean;
  sampling: boolean;
  changing?: boolean;
  requestedBackend: string;
  backend: string;
  step: number;
  objective: string;
  run: { data: { name: string; conditional: boolean }; model: { hidden: number } };
  samples?: { count: number; step: number };
  message: string | null;
  lastError: string | null;
};
type When = 'training' | 'sampling';
/** A control and the value to give it: a select's option, or a checkbox/radio's checked state. */
type Choice = { selector: string; value: string | boolean };

const options = browserTestOptions();
let server: Playground | undefined;
let browser: Browser | undefined;
let page: Page;
const pageErrors: string[] = [];

type Controls = { dataset: string; hidden: number; conditional: boolean; backend: string; objective: string | null; count: number };

/** The page's state, and what its controls show (read from the DOM, not from the page's own report). */
const state = (): Promise<PageState & { controls: Controls }> =>
  page.evaluate(() => {
    // (no named functions in here: tsx would wrap them in a helper the page does not have)
    const [dataset, hidden, backend, count] = ['dataset', 'hidden', 'backend', 'count'].map(
      (id) => (document.getElementById(id) as HTMLSelectElement).value,
    );
    const controls: Controls = {
      dataset,
      hidden: Number(hidden),
      conditional: (document.getElementById('conditional') as HTMLInputElement).checked,
      backend,
      objective: document.querySelector<HTMLInputElement>('input[name="objective"]:checked')?.value ?? null,
      count: Number(count),
    };
    return { ...(window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state(), controls };
  });

/**
 * Chooses `choices` (in one go) at a moment the page is busy as `when` says: the check and the choice happen in one turn of the
 * page's event loop, so the setting is chosen mid-training or mid-sampling, not after.
 */
const chooseWhile = async (when: When, ...choices: Choice[]) => {
  for (let tries = 0; tries < 50; tries++) {
    await page.waitForFunction(
      (w) => {
        const s = (
          window as unknown as { fusediffPlayground: { state(): PageState & { sampleProgress: { done: number } } } }
        ).fusediffPlayground.state();
        return !s.changing && (w === 'training' ? s.running && s.step > 0 : s.sampling && !s.running && s.sampleProgress.done >= 1);
      },
      when,
      { timeout: 120_000, polling: 10 },
    );
    const chosen = await page.evaluate(
      ({ when: w, choices: cs }) => {
        const s = (
          window as unknown as { fusediffPlayground: { state(): PageState & { sampleProgress: { done: number } } } }
        ).fusediffPlayground.state();
        if (!(!s.changing && (w === 'training' ? s.running && s.step > 0 : s.sampling && !s.running))) return false;
        for (const c of cs) {
          const el = document.querySelector(c.selector) as HTMLSelectElement | HTMLInputElement;
          if (el instanceof HTMLSelectElement) el.value = String(c.value);
          else el.checked = Boolean(c.value);
          el.dispatchEvent(new Event('input', { bubbles: true }));
          el.dispatchEvent(new Event('change', { bubbles: true }));
        }
        return true;
      },
      { when, choices },
    );
    if (chosen) return;
  }
  throw new Error(`the page was never ${when} when ${choices.map((c) => c.selector).join(', ')} was to be set`);
};

/** Waits until the session has the setting (and the page is training again, or idle, as before), then compares. */
const settle = async (t: TestContext, label: string, when: When, applied: string) => {
  try {
    await page.waitForFunction(
      ({ applied: a, when: w }) => {
        const s = (window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state();
        return !s.changing && (w === 'training' ? s.running && s.step > 0 : !s.running) && new Function('s', `return ${a}`)(s);
      },
      { applied, when },
      { timeout: 60_000, polling: 50 },
    );
  } catch {
    const s = await state();
    assert.fail(
      `${label}: the setting was not applied (${applied}): session ${JSON.stringify({
        dataset: s.run.data.name,
        hidden: s.run.model.hidden,
        conditional: s.run.data.conditional,
        backend: s.requestedBackend,
        objective: s.objective,
      })}, controls ${JSON.stringify(s.controls)}`,
    );
  }
  const s = await state();
  assert.equal(s.lastError, null, `${label}: ${s.lastError}`);
  const c = s.controls;
  assert.deepEqual(
    { dataset: c.dataset, hidden: c.hidden, conditional: c.conditional, backend: c.backend, objective: c.objective },
    {
      dataset: s.run.data.name,
      hidden: s.run.model.hidden,
      conditional: s.run.data.conditional,
      backend: s.requestedBackend,
      objective: s.objective,
    },
    `${label}: the controls show what the session runs`,
  );
  t.diagnostic(`${label}: applied at step ${s.step}; ${s.run.data.name}, MLP ${s.run.model.hidden}, ${s.requestedBackend}, ${s.objective}`);
  return s;
};

/** Trains a few steps and clicks Pause: the page then samples with the final weights. */
const trainThenPause = async (steps: number) => {
  const target = (await state()).step + steps;
  await page.click('#train');
  await page.waitForFunction(
    (n) => (window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state().step >= n,
    target,
    { timeout: 120_000, polling: 50 },
  );
  await page.click('#train');
};

before(async () => {
  if (options.skip) return;
  server = await serve({ port: 0 });
  browser = await launch();
  page = await browser.context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${server.url}?backend=wasm`);
  await page.waitForFunction(() => (window as unknown as { fusediffPlayground?: unknown }).fusediffPlayground !== undefined, null, {
    timeout: 30_000,
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test(
  'every setting chosen while the page trains or samples is applied: the new session and the controls agree',
  { ...options, timeout: options.skip ? 1 : 600_000 },
  async (t: TestContext) => {
    // a small model; long sampling runs (2000 points, 100 DDIM steps), so that there is time to choose mid-sampling
    await page.selectOption('#hidden', '64');
    await settle(t, 'width 64 while idle', 'sampling', 's.run.model.hidden === 64');
    await page.selectOption('#count', '2000');
    await page.selectOption('#steps', '100');

    // ---- mid-training
    await page.click('#train');
    await chooseWhile('training', { selector: '#dataset', value: 'twoMoons' });
    await settle(t, 'data set mid-training', 'training', "s.run.data.name === 'twoMoons'");
    await chooseWhile('training', { selector: '#hidden', value: '128' });
    await settle(t, 'width mid-training', 'training', 's.run.model.hidden === 128 && s.run.data.name === "twoMoons"');
    await chooseWhile('training', { selector: '#conditional', value: true });
    await settle(t, 'conditioning mid-training', 'training', 's.run.data.conditional === true && s.run.model.hidden === 128');
    // two at once: the second is chosen while the first is being applied
    await chooseWhile('training', { selector: '#dataset', value: 'checkerboard' }, { selector: '#hidden', value: '64' });
    await settle(t, 'two settings at once mid-training', 'training', "s.run.data.name === 'checkerboard' && s.run.model.hidden === 64");
    await chooseWhile('training', { selector: 'input[name="objective"][value="sp"]', value: true });
    await settle(t, 'objective mid-training', 'training', "s.objective === 'sp'");
    await chooseWhile('training', { selector: '#backend', value: 'webgl2' });
    await settle(t, 'backend mid-training', 'training', "s.requestedBackend === 'webgl2' && s.objective === 'sp'");

    // ---- mid-sampling: Pause samples with the final weights; a change stops that run and samples the changed model
    await page.click('#train');
    // (the case: WebGPU chosen right after Pause, while the page sampled)
    await chooseWhile('sampling', { selector: '#backend', value: 'webgpu' });
    await settle(t, 'WebGPU mid-sampling (after Pause)', 'sampling', "s.requestedBackend === 'webgpu'");
    await chooseWhile('sampling', { selector: '#backend', value: 'wasm' });
    await settle(t, 'backend mid-sampling', 'sampling', "s.requestedBackend === 'wasm'");
    await chooseWhile('sampling', { selector: 'input[name="objective"][value="mse"]', value: true });
    await settle(t, 'objective mid-sampling', 'sampling', "s.objective === 'mse' && s.requestedBackend === 'wasm'");
    await chooseWhile('sampling', { selector: '#count', value: '500' });
    const counted = await settle(t, 'sample count mid-sampling', 'sampling', '!s.sampling && s.samples?.count === 500');
    assert.equal(counted.controls.count, 500);
    assert.equal(counted.samples!.step, counted.step, 'the samples are of the final weights');
    assert.doesNotMatch(counted.message ?? '', /Sampling stopped/, 'the page, not the person, stopped that sampling run');
    await page.selectOption('#count', '2000'); // samples again
    await chooseWhile('sampling', { selector: '#dataset', value: 'grid25' });
    await settle(t, 'data set mid-sampling', 'sampling', "s.run.data.name === 'grid25' && s.step === 0");
    await trainThenPause(5);
    await chooseWhile('sampling', { selector: '#hidden', value: '128' });
    await settle(t, 'width mid-sampling', 'sampling', "s.run.model.hidden === 128 && s.run.data.name === 'grid25'");
    await trainThenPause(5);
    await chooseWhile('sampling', { selector: '#conditional', value: false });
    const last = await settle(t, 'conditioning mid-sampling', 'sampling', 's.run.data.conditional === false && s.run.model.hidden === 128');
    assert.equal(last.requestedBackend, 'wasm');
    assert.equal(last.lastError, null);
    assert.deepEqual(pageErrors, []);
  },
);

test(
  'the loss figure is laid out anew as its data change: after a reset, SP and a backend switch nothing is cut off',
  options,
  async (t: TestContext) => {
    const clipped = async () =>
      (
        await page.evaluate(
          () =>
            (
              window as unknown as {
                fusediffPlayground: { state(): { figuresClipped: Record<string, Record<string, number> | null> } };
              }
            ).fusediffPlayground.state().figuresClipped,
        )
      ).loss;
    const idle = () =>
      page.waitForFunction(
        () => {
          const s = (window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state();
          return !s.running && !s.sampling && !s.changing;
        },
        null,
        { timeout: 120_000, polling: 100 },
      );
    await page.selectOption('#count', '500');
    await page.selectOption('#steps', '25');
    const seen: string[] = [];
    for (const [label, act] of [
      ['a reset', () => page.click('#reset')],
      // SP's losses are orders of magnitude below MSE's: the log axis gets more and wider tick labels
      ['the switch to SP', () => page.check('input[name="objective"][value="sp"]')],
      ['a backend switch', () => page.selectOption('#backend', 'cpu')],
      ['a backend switch', () => page.selectOption('#backend', 'wasm')],
    ] as const) {
      await act();
      await idle();
      await trainThenPause(40);
      await idle();
      await page.waitForTimeout(300); // the figure is drawn asynchronously
      const c = await clipped();
      seen.push(`${label}: ${JSON.stringify(c)}`);
      assert.ok(c, 'the loss figure is drawn');
      // (a pixel of a glyph's estimated bounds past the edge is no cut: the clipped title was tens of pixels)
      for (const [side, px] of Object.entries(c)) assert.ok(px <= 2, `after ${label}, the loss figure's ${side} is cut off by ${px} px`);
    }
    t.diagnostic(seen.join('; '));
    await page.screenshot({ path: 'out/browser/playground-settings.png', fullPage: true });
  },
);

test('the grey earlier samples say how they were drawn: CFG 3 under SP samples drawn at CFG 1', options, async () => {
  const idle = () =>
    page.waitForFunction(
      () => {
        const s = (window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state();
        return !s.running && !s.sampling && !s.changing;
      },
      null,
      { timeout: 120_000, polling: 100 },
    );
  await page.check('input[name="objective"][value="mse"]');
  await idle();
  await page.setChecked('#conditional', true); // a new, class-conditional model: CFG applies
  await idle();
  await page.selectOption('#count', '500');
  await page.selectOption('#steps', '25');
  await page.selectOption('#cfg', '3');
  await trainThenPause(40);
  await idle();
  await page.check('input[name="objective"][value="sp"]'); // the MSE samples (CFG 3) become the grey ones
  await idle();
  await page.selectOption('#cfg', '1'); // samples anew, at CFG 1
  await page.waitForSelector('#ghostCaption', { timeout: 60_000 });
  await idle();
  const caption = (await page.textContent('#ghostCaption')) ?? '';
  assert.match(caption, /the last MSE ones, step \d+, CFG 3 \(the current samples: CFG 1\)/, caption);
});
