// The playground in headless Chromium (Debian's package, driven by playwright-core; SwiftShader's WebGL2 where
// there is no GPU): the page served by `npm run play` trains on WebGL2 until the loss has clearly fallen, draws
// samples, fine-tunes with SP, downloads a checkpoint the CLI's config codec accepts, loads a CLI-made checkpoint,
// refuses another model's with both signatures, and says so when there is no WebGL2 and it falls back.
// Without Chromium the tests are skipped locally and FAIL in CI (CI=true).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import type { Page } from 'playwright-core';
import { decodeCheckpoint, saveCheckpoint } from '../storage/checkpoint.ts';
import { defaultConfig, decodeConfig } from '../runs/config.ts';
import { setupRun } from '../runs/setup.ts';
import { contentSecurityPolicy, serve, type Playground } from '../web/server.ts';
import { browserTestOptions, launch, type Browser } from './browser/chromium.ts';

/** Steps of the WebGL2 training run; the loss must fall by 30% (first 20 vs last 20 steps) within them. */
const STEPS = 300;
const options = browserTestOptions();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-browser-'));
/** Where the screenshots go (out/ is git-ignored); docs/playground.png is a copy of one of them. */
const shots = path.join(process.cwd(), 'out', 'browser');

let server: Playground | undefined;
let browser: Browser | undefined;
let page: Page;
const pageErrors: string[] = [];
/** Content-Security-Policy violations, from the page's securitypolicyviolation events and the console's reports. */
const cspViolations: string[] = [];

type PageState = {
  ready: boolean;
  running: boolean;
  sampling: boolean;
  backend: string;
  requestedBackend: string;
  fallback: string | null;
  renderer: string | null;
  adapter: string | null;
  kernels: { kernels: number; webgl2Kernels: number; cpuFallbacks: number; textures: number };
  step: number;
  objective: string;
  losses: number[];
  lossObjectives: string[];
  signature: string;
  run: { data: { name: string; conditional: boolean } };
  sampleEvents: number;
  sampleProgress: { done: number; total: number };
  stopClicks: number[];
  samples?: {
    count: number;
    finite: boolean;
    step: number;
    objective: string;
    backend: string;
    logLikelihood: number;
    offData: number;
    coverage: number;
  };
  stepsPerSecond: number | null;
  message: string | null;
  messageDetails: string | null;
  banner: string;
  lastError: string | null;
};

const state = (p: Page = page): Promise<PageState> =>
  p.evaluate(() => (window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state());
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Opens the playground; the tests of the WebGL2 path ask for it (the default, auto, picks wasm on SwiftShader). */
const open = async (p: Page, query = '?backend=webgl2') => {
  p.on('pageerror', (e) => pageErrors.push(e.message));
  // a violation in the page fires securitypolicyviolation and Chromium reports it on the console; one in a worker
  // (whose eval would throw) reaches neither, but fails the worker's kernels, which the tests see
  p.on('console', (m) => {
    if (/content security policy|securitypolicyviolation/i.test(m.text())) cspViolations.push(`${query}: ${m.text()}`);
  });
  await p.addInitScript(() =>
    document.addEventListener('securitypolicyviolation', (e) =>
      console.error(`securitypolicyviolation: ${e.effectiveDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`),
    ),
  );
  const response = await p.goto(`${server!.url}${query}`);
  assert.equal(response?.headers()['content-security-policy'], contentSecurityPolicy, 'the page is served with its CSP');
  await p.waitForFunction(() => (window as unknown as { fusediffPlayground?: unknown }).fusediffPlayground !== undefined, null, {
    timeout: 30_000,
  });
};

/** Clicks Train and waits until `steps` more steps have run, then pauses and waits for the final sample. */
const train = async (steps: number, p: Page = page, timeout = 200_000) => {
  const target = (await state(p)).step + steps;
  await p.click('#train');
  await p.waitForFunction(
    (n) =>
      (window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state().step >= n ||
      !!(window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state().lastError,
    target,
    { timeout, polling: 250 },
  );
  await p.click('#train'); // pause: the page samples once more with the final weights
  await p.waitForFunction(
    () => {
      const s = (window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state();
      return !s.running && !s.sampling;
    },
    null,
    { timeout: 60_000, polling: 100 },
  );
  const s = await state(p);
  assert.equal(s.lastError, null, `the page reported an error: ${s.lastError}`);
  return s;
};

before(async () => {
  if (options.skip) return;
  fs.mkdirSync(shots, { recursive: true });
  server = await serve({ port: 0 });
  browser = await launch();
  page = await browser.context.newPage();
  await open(page);
});

after(async () => {
  await browser?.close();
  await server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test(
  `the page trains on WebGL2 for ${STEPS} steps: the loss falls, samples are drawn, every kernel ran in WebGL2`,
  options,
  async (t: TestContext) => {
    const s0 = await state();
    assert.equal(s0.backend, 'webgl2', `the page runs on ${s0.backend}: ${s0.fallback}`);
    assert.equal(s0.fallback, null);
    assert.match(s0.banner, /Running on WebGL2/);
    t.diagnostic(`renderer: ${s0.renderer}`);
    // a width that trains at a few steps per second on SwiftShader; fewer, shorter samples
    await page.selectOption('#hidden', '64');
    await page.selectOption('#count', '500');
    await page.selectOption('#steps', '25');
    const t0 = performance.now();
    const s = await train(STEPS);
    const seconds = (performance.now() - t0) / 1000;
    t.diagnostic(
      `${s.step} steps in ${seconds.toFixed(1)} s (page: ${s.stepsPerSecond} steps/s while training), ` +
        `${s.sampleEvents} samples, ${s.kernels.kernels} kernels`,
    );

    assert.ok(s.losses.length >= STEPS && s.losses.every(Number.isFinite), 'every loss is finite');
    const first = mean(s.losses.slice(0, 20)),
      last = mean(s.losses.slice(-20));
    t.diagnostic(`loss: mean of the first 20 steps ${first.toFixed(4)}, of the last 20 ${last.toFixed(4)}`);
    assert.ok(last < 0.7 * first, `the loss did not fall: ${first} -> ${last}`);

    assert.equal(s.backend, 'webgl2');
    assert.ok(
      s.kernels.kernels > 0 && s.kernels.webgl2Kernels === s.kernels.kernels,
      `every gpu.js kernel runs in a WebGL2 context: ${JSON.stringify(s.kernels)}`,
    );
    assert.equal(s.kernels.cpuFallbacks, 0, 'no gpu.js kernel fell back to the CPU');

    assert.ok(s.samples, 'samples were drawn');
    assert.equal(s.samples.count, 500);
    assert.ok(s.samples.finite, 'the samples are finite');
    assert.equal(s.samples.step, s.step, 'the last sample used the final weights');
    assert.equal(s.samples.backend, 'webgl2');
    t.diagnostic(
      `samples: log-likelihood ${s.samples.logLikelihood.toFixed(2)}, ` +
        `off the data ${(100 * s.samples.offData).toFixed(1)}%, modes covered ${(100 * s.samples.coverage).toFixed(0)}%`,
    );
    // 8 Gaussians: a model that learned anything puts samples near at least half of the modes
    assert.ok(s.samples.coverage >= 0.5, `mode coverage ${s.samples.coverage}`);
    await page.screenshot({ path: path.join(shots, 'playground-mse.png'), fullPage: true });
  },
);

test('SP fine-tuning starts from the MSE weights, trains on WebGL2 and redraws the samples', options, async (t: TestContext) => {
  const before = await state();
  await page.check('input[name="objective"][value="sp"]');
  const s = await train(30);
  const sp = s.losses.filter((_, i) => s.lossObjectives[i] === 'sp');
  t.diagnostic(
    `SP losses: ${sp
      .slice(0, 3)
      .map((v) => v.toExponential(2))
      .join(', ')} ... ${sp
      .slice(-3)
      .map((v) => v.toExponential(2))
      .join(', ')}`,
  );
  assert.equal(s.objective, 'sp');
  assert.ok(sp.length >= 30 && sp.every(Number.isFinite), 'SP steps ran with finite losses');
  assert.equal(s.losses.length - sp.length, before.losses.length, 'the MSE history is kept');
  assert.equal(s.backend, 'webgl2');
  assert.equal(s.kernels.cpuFallbacks, 0);
  assert.ok(s.samples?.finite && s.samples.objective === 'sp' && s.samples.step === s.step);
  t.diagnostic(
    `samples after SP: log-likelihood ${s.samples!.logLikelihood.toFixed(2)}, off the data ${(100 * s.samples!.offData).toFixed(1)}% ` +
      `(before: ${before.samples!.logLikelihood.toFixed(2)}, ${(100 * before.samples!.offData).toFixed(1)}%)`,
  );
  await page.screenshot({ path: path.join(shots, 'playground.png'), fullPage: true });
});

test(
  'while the page samples on WebGL2 it shows progress and handles a click within 1 s; Stop keeps the previous samples',
  options,
  async (t: TestContext) => {
    const before = await state();
    assert.ok(before.samples, 'the earlier tests drew samples');
    // a long sampling run (choosing a setting samples anew): 500 points, 100 DDIM steps, tens of seconds on SwiftShader
    await page.selectOption('#steps', '100');
    const busy = (): Promise<PageState> => state();
    await page.waitForFunction(
      () => {
        const s = (window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state();
        return s.sampling && s.sampleProgress.done >= 3;
      },
      null,
      { timeout: 120_000, polling: 100 },
    );
    const during = await busy();
    assert.ok(during.sampleProgress.done < during.sampleProgress.total, `progress ${JSON.stringify(during.sampleProgress)}`);
    assert.ok(await page.isVisible('#sampleProgress'), 'the progress bar is shown while sampling');
    // a plain mouse click where the button is (no waiting for actionability, as a person clicks)
    await page.locator('#stopSampling').scrollIntoViewIfNeeded();
    const box = (await page.locator('#stopSampling').boundingBox())!;
    const t0 = performance.now();
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await page.waitForFunction(
      () => (window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state().stopClicks.length > 0,
      null,
      { timeout: 5_000, polling: 20 },
    );
    const clicked = performance.now() - t0;
    const handled = await busy();
    t.diagnostic(
      `click on Stop at step ${during.sampleProgress.done}/${during.sampleProgress.total}: handled ` +
        `${handled.stopClicks[0].toFixed(0)} ms after the browser received it (${clicked.toFixed(0)} ms from the test's click to ` +
        `reading its effect)`,
    );
    assert.ok(handled.stopClicks[0] < 1000, `the click waited ${handled.stopClicks[0]} ms for the page`);
    assert.ok(clicked < 1000, `${clicked} ms from the click to its effect`);
    await page.waitForFunction(
      () => !(window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state().sampling,
      null,
      { timeout: 30_000, polling: 100 },
    );
    const after = await state();
    assert.match(after.message ?? '', /Sampling stopped/);
    assert.equal(after.sampleEvents, before.sampleEvents, 'no new samples');
    assert.equal(after.samples?.step, before.samples.step, 'the previous samples are kept');
    assert.equal(after.lastError, null);
    assert.ok(!(await page.isVisible('#sampleProgress')), 'the progress bar is hidden again');
    await page.selectOption('#steps', '25'); // samples again, to the end
    await page.waitForFunction(
      (n) => {
        const s = (window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state();
        return !s.sampling && s.sampleEvents > n;
      },
      before.sampleEvents,
      { timeout: 120_000, polling: 100 },
    );
  },
);

test('the pictures are vega figures drawn into the page, and no backend name is cut off in its drop-down', options, async () => {
  for (const id of ['loss', 'scatter']) assert.equal(await page.locator(`#${id} canvas`).count(), 1, `#${id} holds a canvas`);
  const fits = await page.evaluate(() => {
    const select = document.getElementById('backend') as HTMLSelectElement;
    const style = getComputedStyle(select);
    const ctx = document.createElement('canvas').getContext('2d')!;
    ctx.font = style.font;
    // the room for the chosen option's text: the box less its padding, borders and the drop-down arrow (about 20 px)
    const room =
      select.getBoundingClientRect().width -
      ['paddingLeft', 'paddingRight', 'borderLeftWidth', 'borderRightWidth'].reduce(
        (a, k) => a + parseFloat(style[k as 'paddingLeft']),
        0,
      ) -
      20;
    return [...select.options].map((o) => ({ text: o.text, width: ctx.measureText(o.text).width, room }));
  });
  for (const f of fits) assert.ok(f.width <= f.room, `'${f.text}' needs ${f.width.toFixed(0)} px, the drop-down has ${f.room.toFixed(0)}`);
});

test(
  'the downloaded checkpoint decodes with the page signature, and its run config is one the CLI accepts and rebuilds',
  options,
  async () => {
    const s = await state();
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    assert.match(download.suggestedFilename(), /^fusediff-eightGaussians-sp-step\d+\.safetensors$/);
    const file = path.join(dir, download.suggestedFilename());
    await download.saveAs(file);
    const ckpt = decodeCheckpoint(fs.readFileSync(file), file, { expectSignature: s.signature });
    assert.equal(ckpt.step, s.step);
    assert.ok(Object.keys(ckpt.state).length > 0 && Object.keys(ckpt.ema).length > 0, 'Adam state and EMA are saved');
    const run = decodeConfig((ckpt.config as { run: unknown }).run, 'the page config');
    assert.equal(setupRun(run).model.signature, ckpt.signature, 'the CLI builds the same model from the stored config');
    assert.match((await state()).message ?? '', /Saved fusediff-eightGaussians-sp-step/);
  },
);

test('a checkpoint saved the way `fusediff train` saves one loads: the model is rebuilt from its config', options, async () => {
  // eps-prediction on the plain cosine schedule: a valid CLI config, and one the page warns about before SP
  const run = {
    ...defaultConfig('twoMoons'),
    prediction: 'eps' as const,
    schedule: { kind: 'cosine' as const, T: 1000, zeroTerminalSnr: false },
  };
  const setup = setupRun(decodeConfig(run));
  const params = setup.model.init(5);
  const file = path.join(dir, 'cli-twoMoons.safetensors');
  saveCheckpoint(file, {
    params,
    state: {},
    ema: params,
    config: { run },
    step: 123,
    rngCounter: 124,
    schedule: setup.schedule.name,
    signature: setup.model.signature,
  });
  await page.setInputFiles('#file', file);
  await page.waitForFunction(
    () => (window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state().message?.startsWith('Loaded'),
    null,
    { timeout: 30_000 },
  );
  const s = await state();
  assert.match(s.message!, /Loaded cli-twoMoons\.safetensors: twoMoons, MLP 128x3, 10 classes, eps-prediction, step 123/);
  assert.equal(s.signature, setup.model.signature);
  assert.equal(s.run.data.name, 'twoMoons');
  assert.equal(s.step, 123);
  assert.equal(await page.inputValue('#dataset'), 'twoMoons');
  await page.check('input[name="objective"][value="sp"]');
  await page.waitForSelector('#objectiveWarning:not([hidden])');
  assert.match((await page.textContent('#objectiveWarning')) ?? '', /predicts eps on a schedule with alpha_T = 4\.9e-5/);
  await page.check('input[name="objective"][value="mse"]');
});

test("another model's checkpoint gets a short message naming the mismatch, both signatures folded under it", options, async (t) => {
  const before = await state();
  const run = defaultConfig('mnist16', 'mlp');
  const setup = setupRun(run);
  const params = setup.model.init(1);
  const file = path.join(dir, 'mnist16.safetensors');
  saveCheckpoint(file, {
    params,
    state: {},
    ema: {},
    config: { run },
    step: 10,
    rngCounter: 11,
    schedule: setup.schedule.name,
    signature: setup.model.signature,
  });
  await page.setInputFiles('#file', file);
  await page.waitForFunction(
    () =>
      (window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state().message?.includes('was not loaded'),
    null,
    { timeout: 30_000 },
  );
  const s = await state();
  assert.ok(await page.isVisible('#message'), 'the message is visible');
  assert.match(
    s.message!,
    new RegExp(
      /mnist16\.safetensors was not loaded: it is a checkpoint of another model /.source +
        /\(it was trained on 'mnist16', and this page trains the 2-D data sets/.source,
    ),
  );
  assert.match(s.message!, /Differs in: .*dim: 256 \(file\) vs 2 \(page\)/);
  // a summary, not the two full signatures (thousands of characters for larger models): they are folded under it
  assert.ok(s.message!.length < 500, `the message has ${s.message!.length} characters: ${s.message}`);
  assert.ok(!s.message!.includes(setup.model.signature), 'the full signatures are not in the message itself');
  assert.ok(s.messageDetails?.includes(setup.model.signature), 'the details name the checkpoint signature');
  assert.ok(s.messageDetails?.includes(before.signature), "the details name the page model's signature");
  assert.ok(await page.isVisible('#message details summary'), 'the details can be unfolded');
  assert.ok(!(await page.isVisible('#message details pre')), 'the details are folded');
  assert.equal(s.signature, before.signature);
  assert.equal(s.step, before.step);
  assert.equal(s.run.data.name, before.run.data.name);

  // dropped on the drop zone this time
  const dataTransfer = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['not a safetensors file'], 'junk.safetensors'));
    return dt;
  });
  await page.dispatchEvent('#drop', 'drop', { dataTransfer });
  await page.waitForFunction(
    () =>
      (window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground
        .state()
        .message?.startsWith('Could not read junk'),
    null,
    { timeout: 30_000 },
  );
  const j = await state();
  t.diagnostic(j.message!);
  assert.equal(j.signature, before.signature);
});

test(
  'switching the model five times frees the old plans: the GL kernel and texture counts do not grow',
  options,
  async (t: TestContext) => {
    await page.selectOption('#hidden', '64');
    const counts: PageState['kernels'][] = [];
    for (let i = 1; i <= 5; i++) {
      // each toggle is a new model (conditional or not): a new session, whose step and sampler plans are compiled anew
      const conditional = i % 2 === 0;
      await page.setChecked('#conditional', conditional);
      await page.waitForFunction(
        (c) => {
          const s = (window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state();
          return s.run.data.conditional === c && s.step === 0;
        },
        conditional,
        { timeout: 30_000 },
      );
      const s = await train(3);
      assert.equal(s.backend, 'webgl2');
      counts.push(s.kernels);
    }
    t.diagnostic(`gpu.js kernels / GL textures after each switch: ${counts.map((k) => `${k.kernels}/${k.textures}`).join(', ')}`);
    // without dispose every switch would add the new model's kernels to the old ones'
    assert.ok(counts[0].kernels > 0 && counts[0].textures > 0);
    assert.deepEqual(counts[2], counts[0], 'the same model after the 1st and 3rd switch');
    assert.deepEqual(counts[4], counts[0], 'the same model after the 1st and 5th switch');
    assert.deepEqual(counts[3], counts[1], 'the same model after the 2nd and 4th switch');
  },
);

test('Reset while the page samples stops the sampling first: the new model is not sampled with the old plans', options, async () => {
  await page.selectOption('#steps', '100'); // samples the current model anew, 100 steps
  await page.waitForFunction(
    () => {
      const s = (window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state();
      return s.sampling && s.sampleProgress.done >= 2;
    },
    null,
    { timeout: 60_000, polling: 100 },
  );
  await page.click('#reset');
  await page.waitForFunction(
    () => {
      const s = (window as unknown as { fusediffPlayground: { state(): PageState } }).fusediffPlayground.state();
      return s.step === 0 && !s.sampling;
    },
    null,
    { timeout: 30_000, polling: 100 },
  );
  const s = await state();
  assert.equal(s.lastError, null);
  assert.doesNotMatch(s.message ?? '', /failed/i);
  await page.selectOption('#steps', '25');
});

test('without WebGL2 the page says so in a banner and trains on the fallback backend', options, async (t: TestContext) => {
  const p = await browser!.context.newPage();
  // a browser whose WebGL2 is unavailable: no canvas hands out a webgl2 context
  await p.addInitScript(() => {
    for (const proto of [HTMLCanvasElement.prototype, OffscreenCanvas.prototype] as {
      getContext(id: string, ...a: unknown[]): unknown;
    }[]) {
      const original = proto.getContext;
      proto.getContext = function (this: unknown, id: string, ...rest: unknown[]) {
        return id === 'webgl2' ? null : original.call(this, id, ...rest);
      };
    }
  });
  await open(p);
  const s0 = await state(p);
  assert.equal(s0.requestedBackend, 'webgl2');
  assert.equal(s0.backend, 'wasm');
  assert.match(
    s0.fallback ?? '',
    /WebGL2 is not available: this browser could not create a WebGL2 context .* Training runs on WebAssembly instead/,
  );
  assert.ok(await p.isVisible('#banner.warn'), 'the banner is shown as a warning');
  assert.match((await p.textContent('#banner')) ?? '', /WebGL2 is not available/);
  await p.selectOption('#hidden', '64');
  await p.selectOption('#count', '500');
  await p.selectOption('#steps', '25');
  const s = await train(30, p);
  t.diagnostic(`wasm fallback: ${s.stepsPerSecond} steps/s`);
  assert.equal(s.backend, 'wasm');
  assert.ok(s.losses.length >= 30 && s.losses.every(Number.isFinite));
  assert.ok(s.samples?.finite && s.samples.backend === 'wasm');
  await p.close();
});

test(
  'by default (auto) the page trains on WebAssembly where WebGL2 is a software rasterizer, and says why',
  options,
  async (t: TestContext) => {
    const p = await browser!.context.newPage();
    await open(p, '');
    const s0 = await state(p);
    assert.equal(s0.requestedBackend, 'auto');
    assert.equal(s0.backend, 'wasm');
    assert.equal(s0.fallback, null, 'auto choosing wasm is not a fallback');
    assert.equal(await p.inputValue('#backend'), 'auto');
    const banner = (await p.textContent('#banner')) ?? '';
    assert.match(banner, /Running on WebAssembly/);
    assert.match(
      banner,
      /auto: wasm \(webgpu's adapter is .*swiftshader, a CPU implementation; webgl2 renders on .*SwiftShader.*a CPU rasterizer/i,
    );
    await p.selectOption('#hidden', '64');
    await p.selectOption('#count', '500');
    await p.selectOption('#steps', '25');
    const s = await train(30, p);
    t.diagnostic(`auto -> wasm: ${s.stepsPerSecond} steps/s; ${banner}`);
    assert.equal(s.backend, 'wasm');
    // words true for the backend in use: wasm's kernels are the compiler's own WebAssembly, and a Node-only backend
    // (headless-gl) is not reported as unavailable in a page
    assert.doesNotMatch(banner, /headlessgl/);
    assert.match((await p.textContent('#banner')) ?? '', /\d+ WebAssembly kernels live/);
    assert.doesNotMatch((await p.textContent('body')) ?? '', /gpu\.js kernels|into gpu\.js|compiles for the GPU/);
    assert.ok(s.losses.length >= 30 && s.losses.every(Number.isFinite));
    await p.close();
  },
);

/** Steps of the WebGPU training run; the loss must fall by 30% (first 20 vs last 20 steps) within them, as on WebGL2. */
const WEBGPU_STEPS = 100;

test(
  `the page trains on WebGPU (SwiftShader's adapter) for ${WEBGPU_STEPS} steps: the loss falls, samples are drawn`,
  options,
  async (t) => {
    const p = await browser!.context.newPage();
    await open(p, '?backend=gpujs-webgpu');
    const s0 = await state(p);
    assert.equal(s0.backend, 'gpujs-webgpu', `the page runs on ${s0.backend}: ${s0.fallback}`);
    assert.equal(s0.fallback, null);
    assert.match(s0.banner, /Running on WebGPU \(gpu\.js\) · adapter: .*swiftshader, a CPU implementation/);
    await p.selectOption('#hidden', '64');
    await p.selectOption('#count', '500');
    await p.selectOption('#steps', '25');
    const s = await train(WEBGPU_STEPS, p);
    assert.equal(s.backend, 'gpujs-webgpu');
    assert.ok(s.losses.length >= WEBGPU_STEPS && s.losses.every(Number.isFinite), 'every loss is finite');
    const first = mean(s.losses.slice(0, 20)),
      last = mean(s.losses.slice(-20));
    t.diagnostic(`webgpu: ${s.stepsPerSecond} steps/s; loss: first 20 steps ${first.toFixed(4)}, last 20 ${last.toFixed(4)}`);
    assert.ok(last < 0.7 * first, `the loss did not fall: ${first} -> ${last}`);
    assert.ok(
      s.samples?.finite && s.samples.backend === 'gpujs-webgpu' && s.samples.step === s.step,
      'samples drawn on webgpu with the final weights',
    );
    await p.close();
  },
);

test(
  `the page trains on the compiler's own WGSL (webgpu, SwiftShader's adapter) for ${WEBGPU_STEPS} steps: the loss falls, samples are drawn`,
  options,
  async (t) => {
    const p = await browser!.context.newPage();
    await open(p, '?backend=webgpu');
    const s0 = await state(p);
    assert.equal(s0.backend, 'webgpu', `the page runs on ${s0.backend}: ${s0.fallback}`);
    assert.equal(s0.fallback, null);
    assert.match(s0.banner, /Running on WebGPU \(WGSL\) · adapter: .*swiftshader, a CPU implementation/);
    await p.selectOption('#hidden', '64');
    await p.selectOption('#count', '500');
    await p.selectOption('#steps', '25');
    const s = await train(WEBGPU_STEPS, p);
    assert.equal(s.backend, 'webgpu');
    assert.ok(s.losses.length >= WEBGPU_STEPS && s.losses.every(Number.isFinite), 'every loss is finite');
    const first = mean(s.losses.slice(0, 20)),
      last = mean(s.losses.slice(-20));
    t.diagnostic(`webgpu (WGSL): ${s.stepsPerSecond} steps/s; loss: first 20 steps ${first.toFixed(4)}, last 20 ${last.toFixed(4)}`);
    assert.ok(last < 0.7 * first, `the loss did not fall: ${first} -> ${last}`);
    assert.ok(
      s.samples?.finite && s.samples.backend === 'webgpu' && s.samples.step === s.step,
      'samples drawn on webgpu with the final weights',
    );
    await p.close();
  },
);

test("in-page speed of the playground's default model: WebGPU, WebGL2 and WebAssembly side by side", options, async (t) => {
  const rows: string[] = [];
  for (const backend of ['webgpu', 'gpujs-webgpu', 'webgl2', 'wasm']) {
    const p = await browser!.context.newPage();
    await open(p, `?backend=${backend}`);
    // the default model (MLP 128x3, batch 256); short samples, so the pause after training is quick
    await p.selectOption('#count', '500');
    await p.selectOption('#steps', '25');
    const s = await train(backend === 'wasm' ? 200 : 40, p);
    assert.equal(s.backend, backend);
    assert.ok(s.stepsPerSecond !== null && s.stepsPerSecond > 0, `${backend}: the page measured its speed`);
    rows.push(`${backend} ${s.stepsPerSecond} steps/s`);
    await p.close();
  }
  t.diagnostic(`MLP 128x3, batch 256, SwiftShader (a CPU): ${rows.join(', ')}`);
});

test('no uncaught errors on the pages', options, () => {
  assert.deepEqual(pageErrors, []);
});

test('the pages ran under their Content-Security-Policy without a violation', options, () => {
  assert.deepEqual(cspViolations, []);
});
