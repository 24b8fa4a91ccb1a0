// The playground page: controls, the training loop (chunks of steps between frames, so the page stays
// responsive), live plots, and checkpoints in and out. All computation is in web/session.ts and the library.
import { prepareWebGPU, type BackendName, type BackendRequest } from '../compiler/index.ts';
import { lossFigure, palette, scatterFigure, type LossSeries } from '../plots/specs.ts';
import type { NDArray } from '../core/ndarray.ts';
import { FigureView } from './plots.ts';
import { defaultRun, isMixtureName, type ObjectiveKind, type PageRun } from './runConfig.ts';
import {
  backendLabels,
  browserBackends,
  kernelReport,
  Session,
  SP_LR_FACTOR,
  webglRenderer,
  webgpuAdapterText,
  type KernelReport,
} from './session.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page: no element #${id}`);
  return el as T;
};
const ui = {
  banner: $('banner'),
  dataset: $<HTMLSelectElement>('dataset'),
  hidden: $<HTMLSelectElement>('hidden'),
  conditional: $<HTMLInputElement>('conditional'),
  modelNote: $('modelNote'),
  objectiveWarning: $('objectiveWarning'),
  backend: $<HTMLSelectElement>('backend'),
  train: $<HTMLButtonElement>('train'),
  reset: $<HTMLButtonElement>('reset'),
  count: $<HTMLSelectElement>('count'),
  steps: $<HTMLSelectElement>('steps'),
  cfg: $<HTMLSelectElement>('cfg'),
  weights: $<HTMLSelectElement>('weights'),
  cfgNote: $('cfgNote'),
  sample: $<HTMLButtonElement>('sample'),
  download: $<HTMLButtonElement>('download'),
  drop: $('drop'),
  file: $<HTMLInputElement>('file'),
  step: $('stStep'),
  rate: $('stRate'),
  loss: $('stLoss'),
  objective: $('stObjective'),
  backendStat: $('stBackend'),
  lossFigure: $('loss'),
  scatter: $('scatter'),
  progress: $('sampleProgress'),
  progressBar: $<HTMLProgressElement>('sampleBar'),
  progressText: $('sampleStatus'),
  stopSampling: $<HTMLButtonElement>('stopSampling'),
  metrics: $('metrics'),
  message: $('message'),
  about: $('about'),
};
const objectiveRadios = [...document.querySelectorAll<HTMLInputElement>('input[name="objective"]')];

// ---- state ----------------------------------------------------------------------------------------------------

const params = new URLSearchParams(location.search);
const initialBackend: BackendRequest = (browserBackends as readonly string[]).includes(params.get('backend') ?? '')
  ? (params.get('backend') as BackendName)
  : 'auto';
const renderer = webglRenderer();
// the adapter is asked for once, before the first session, so 'auto' can weigh it (and the webgpu backend exists)
await prepareWebGPU();
const adapter = webgpuAdapterText();
let session = new Session(runFromControls(), initialBackend);
/** models made so far (the first included): a new model, a reset or a loaded checkpoint makes one */
let models = 1;
let running = false;
/** the training loop while it runs: on WebGPU a step ends asynchronously, so stopping waits for this */
let looping: Promise<void> | undefined;
let sampling = false;
let lastError: string | undefined;
/** What the kernels of a backend are, in words: the compiler's own WebAssembly or WGSL, else gpu.js's. */
const kernelFamily = (b: BackendName): string => (b === 'wasm' ? 'WebAssembly' : b === 'webgpu' ? 'WGSL' : 'gpu.js');
let kernels: KernelReport = { kernels: 0, webgl2Kernels: 0, cpuFallbacks: 0, textures: 0 };
/** (steps, training ms) over recent chunks, for steps/s */
let rateWindow: { n: number; ms: number }[] = [];
let sinceSample = { steps: 0, ms: 0 };
let sampleMs = 0;
let sampleEvents = 0;
/** stops the sampling in flight (the Stop button) */
let sampleAbort: AbortController | undefined;
/** sampling progress: DDIM steps done of total */
let sampleProgress = { done: 0, total: 0 };
/** clicks on Stop and how long after the browser received each one its handler ran (event.timeStamp to now), in ms */
let stopClicks: number[] = [];

/**
 * The settings chosen in the controls whose change has not been applied yet. A change waits for the training chunk
 * and the sampling in flight to end; meanwhile the page redraws from the old session, so the controls show these
 * (not the old session's values), and the change applies what the person chose, whenever they chose it.
 */
type Settings = { dataset: string; hidden: string; conditional: boolean; backend: BackendRequest; objective: ObjectiveKind };
let pending: Partial<Settings> = {};
/** changes queued or being applied: they run one after another, and the loop restarts after the last */
let changing = 0;
let changes: Promise<void> = Promise.resolve();
/** whether to train again once the queued changes are applied (the loop ran, or Train was clicked meanwhile) */
let resumeAfterChanges = false;
/**
 * whether to sample once the queued changes are applied (when not training, and of a trained model): a change stopped a
 * sampling run, which is redone on the changed model, or a sample setting was chosen meanwhile
 */
let resampleAfterChanges = false;
/** Sample now was clicked while changes were queued: the changed model is sampled once they are applied */
let sampleAfterChanges = false;
/** Resume was clicked after Pause while the loop was still stopping: it starts again once stopped, without sampling */
let restartAfterPause = false;
/** a sampling run aborted by the page itself (a change, or new sample settings): no 'Sampling stopped' message */
let quietAbort = false;
/** the sample settings changed while sampling: sample again with them once the run in flight has stopped */
let resampleAfter = false;

function runFromControls(): PageRun {
  const name = isMixtureName(ui.dataset.value) ? ui.dataset.value : 'eightGaussians';
  const run = defaultRun(name);
  run.model.hidden = Number(ui.hidden.value);
  run.data.conditional = ui.conditional.checked;
  return run;
}

// ---- rendering ------------------------------------------------------------------------------------------------

/** the message shown, and its folded details (see showMessage) */
let messageText: string | undefined;
let messageDetails: string | undefined;
/** Shows a message; `details` (long text such as full model signatures) is folded under it. */
const showMessage = (kind: 'info' | 'error', text: string, details?: string) => {
  ui.message.hidden = false;
  ui.message.className = `message ${kind}`;
  ui.message.textContent = text;
  messageText = text;
  messageDetails = details;
  if (details) {
    const fold = document.createElement('details');
    const summary = document.createElement('summary');
    summary.textContent = 'Details';
    const pre = document.createElement('pre');
    pre.textContent = details;
    fold.append(summary, pre);
    ui.message.append(fold);
  }
};
const clearMessage = () => {
  ui.message.hidden = true;
  ui.message.textContent = '';
  messageText = messageDetails = undefined;
};

const renderBanner = () => {
  const b = session.backend;
  const running = session.runningBackend;
  const fallback = session.runtimeFallback ?? b.fallback;
  const software = /swiftshader|llvmpipe|software/i.test(renderer ?? '');
  const gpu =
    running === 'webgl2'
      ? ` · GPU: ${renderer ?? 'unknown'}${software ? ' (software rendering: no hardware GPU was found)' : ''}`
      : running === 'gpujs-webgpu' || running === 'webgpu'
        ? ` · adapter: ${adapter ?? 'unknown'}`
        : '';
  const k = kernels.kernels
    ? ` · ${kernels.kernels} ${kernelFamily(running)} kernels live${running === 'webgl2' ? `, ${kernels.webgl2Kernels} in WebGL2` : ''}` +
      `${kernels.cpuFallbacks ? `, ${kernels.cpuFallbacks} fell back to CPU` : ''}`
    : '';
  ui.banner.className = `banner ${fallback || kernels.cpuFallbacks ? 'warn' : 'ok'}`;
  ui.banner.innerHTML = '';
  const head = document.createElement('span');
  head.textContent = fallback ? `⚠ ${fallback}` : `Running on ${backendLabels[running]}${gpu}`;
  const small = document.createElement('small');
  const why = b.reason && running === b.name ? ` · ${b.reason}` : '';
  small.textContent = fallback ? `Backend: ${backendLabels[running]}${k}` : `backend: ${running}${why}${k}`;
  ui.banner.append(head, small);
  ui.banner.dataset.backend = running;
  ui.backendStat.textContent = running;
};

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

const renderStats = () => {
  ui.step.textContent = String(session.step);
  const tot = rateWindow.reduce((a, r) => ({ n: a.n + r.n, ms: a.ms + r.ms }), { n: 0, ms: 0 });
  ui.rate.textContent = tot.ms > 0 ? (tot.n / (tot.ms / 1000)).toFixed(1) : '–';
  const recent = session.losses
    .slice(-20)
    .filter((p) => p.objective === session.objective)
    .map((p) => p.loss);
  ui.loss.textContent = recent.length ? mean(recent).toPrecision(3) : '–';
  ui.objective.textContent = session.objective === 'sp' ? 'SP' : 'MSE';
  ui.objective.style.color = session.objective === 'sp' ? 'var(--sp)' : 'var(--accent)';
};

const referencePoints = new Map<string, NDArray>();
const lossView = new FigureView(ui.lossFigure);
const scatterView = new FigureView(ui.scatter);
let plotsDrawnAt = 0;
/** what the sample figure shows now: it is redrawn only when one of these changes */
let scatterShown: Record<string, unknown> = {};

/** Figure widths from the containers' CSS widths, leaving room for the legends. */
const widthOf = (el: HTMLElement, legend: number, max: number) => Math.max(220, Math.min(max, (el.clientWidth || 600) - legend));

/** The loss history as one series per stretch of one objective (MSE, then SP, ...), in the report's colours. */
const lossSeries = (): LossSeries[] => {
  const series: { name: string; losses: number[]; firstStep: number; colour: string }[] = [];
  const seen = { mse: 0, sp: 0 };
  let prev: string | undefined;
  for (const p of session.losses) {
    if (p.objective !== prev) {
      const n = ++seen[p.objective];
      const name = `${p.objective === 'sp' ? 'SP' : 'MSE'}${n > 1 ? ` (${n})` : ''}`;
      series.push({ name, losses: [], firstStep: p.step, colour: p.objective === 'sp' ? palette.sp : palette.mse });
      prev = p.objective;
    }
    series[series.length - 1].losses.push(p.loss);
  }
  return series;
};

const renderPlots = () => {
  plotsDrawnAt = performance.now();
  const run = session.run;
  const model = `MLP ${run.model.hidden}×${run.model.depth}${session.numClasses ? ', class-conditional' : ''}`;
  void lossView.show(
    lossFigure({
      title: `Training loss · ${run.data.name}`,
      subtitle: [`${model}, batch ${run.train.batchSize}; SP fine-tunes at lr ${+(run.train.lr * SP_LR_FACTOR).toPrecision(3)}`],
      series: lossSeries(),
      width: widthOf(ui.lossFigure, 130, 640),
      height: 170,
    }),
  );
  const m = session.mixture;
  let reference = referencePoints.get(m.name);
  if (!reference) referencePoints.set(m.name, (reference = m.sample(2000, 12345)));
  const s = session.samples;
  const ghost = session.objective === 'sp' && session.beforeSp && s && s !== session.beforeSp ? session.beforeSp.x : undefined;
  const size = widthOf(ui.scatter, 190, 460);
  /** how the grey earlier samples were drawn, where that differs from the current ones (else they are not comparable) */
  const ghostSettings = (g: NonNullable<typeof session.beforeSp>, now: NonNullable<typeof s>): string[] => [
    `step ${g.step}`,
    `CFG ${g.cfgScale}${g.cfgScale !== now.cfgScale ? ` (the current samples: CFG ${now.cfgScale})` : ''}`,
    ...(g.weights !== now.weights ? [`${g.weights === 'ema' ? 'EMA' : 'current'} weights`] : []),
    ...(g.steps !== now.steps ? [`DDIM ${g.steps} steps`] : []),
    ...(g.x.shape[0] !== now.x.shape[0] ? [`${g.x.shape[0]} points`] : []),
  ];
  const shown = { s, ghost, size, name: m.name };
  if (Object.entries(shown).every(([k, v]) => scatterShown[k as keyof typeof shown] === v)) return; // nothing new to draw
  scatterShown = shown;
  void scatterView.show(
    scatterFigure({
      title: s ? `Samples · ${run.data.name} · step ${s.step} (${s.objective === 'sp' ? 'SP' : 'MSE'})` : `Data · ${run.data.name}`,
      subtitle: s
        ? [
            `${model} · CFG ${s.cfgScale}${s.cfgScale === 1 ? ' (none)' : ''} · ${s.weights === 'ema' ? 'EMA' : 'current'} weights`,
            `DDIM ${s.steps} steps · ${s.x.shape[0]} points · ${(s.ms / 1000).toFixed(1)} s on ${s.backend}`,
            ...(ghost && session.beforeSp ? [`grey: the last MSE samples, ${ghostSettings(session.beforeSp, s).join(', ')}`] : []),
          ]
        : ['the samples appear here once the model has trained'],
      samples: s?.x,
      classes: s?.classes,
      reference,
      ghost,
      bounds: m.bounds,
      size,
    }),
  );
  if (s) {
    const ll = Number.isFinite(s.logLikelihood)
      ? s.logLikelihood.toFixed(2)
      : s.logLikelihood === -Infinity
        ? '−∞ (some off the support)'
        : 'n/a';
    ui.metrics.innerHTML =
      `mean log-likelihood <b>${ll}</b> · off the data <b>${(100 * s.offData).toFixed(1)}%</b> ` +
      `· modes covered <b>${(100 * s.coverage).toFixed(0)}%</b>` +
      (ghost && session.beforeSp
        ? ` <span class="muted" id="ghostCaption">(earlier samples, grey: the last MSE ones, ` +
          `${ghostSettings(session.beforeSp, s).join(', ')}; log-lik ${session.beforeSp.logLikelihood.toFixed(2)}, ` +
          `off ${(100 * session.beforeSp.offData).toFixed(1)}%)</span>`
        : '');
  } else ui.metrics.textContent = '';
};

const renderControls = () => {
  const conditional = session.numClasses !== undefined;
  ui.cfg.disabled = !conditional;
  ui.cfgNote.textContent = conditional
    ? `Samples cycle through the ${session.numClasses} classes (mixture modes); ` +
      `CFG mixes the class-conditional and the unconditional (null-class) predictions.`
    : 'CFG needs a class-conditional model: tick "Condition on the mixture mode". (SP needs no classes.)';
  ui.modelNote.textContent =
    `MLP ${session.run.model.hidden}×${session.run.model.depth}, ${session.run.prediction}-prediction, ${session.schedule.name}; ` +
    `batch ${session.run.train.batchSize}, Adam lr ${session.run.train.lr} ` +
    `(SP fine-tuning: ${+(session.run.train.lr * SP_LR_FACTOR).toPrecision(3)}), EMA ${session.run.train.emaDecay}.`;
  const warning = session.objective === 'sp' ? session.objectiveWarning : undefined;
  ui.objectiveWarning.hidden = !warning;
  ui.objectiveWarning.textContent = warning ?? '';
  // the controls show the session's settings, except those chosen but not yet applied (see `pending`)
  const objective = pending.objective ?? session.objective;
  for (const r of objectiveRadios) r.checked = r.value === objective;
  ui.dataset.value = pending.dataset ?? session.run.data.name;
  ui.conditional.checked = pending.conditional ?? session.run.data.conditional;
  const hidden = pending.hidden ?? String(session.run.model.hidden);
  if (![...ui.hidden.options].some((o) => o.value === hidden)) ui.hidden.add(new Option(hidden, hidden));
  ui.hidden.value = hidden;
  ui.backend.value = pending.backend ?? session.backend.requested;
  // what the Train button does next: while changes are queued or the loop is stopping, the state the page will end in
  const training = running || (changing > 0 ? resumeAfterChanges : looping !== undefined && restartAfterPause);
  ui.train.textContent = training ? 'Pause' : session.step > 0 ? 'Resume' : 'Train';
  ui.train.classList.toggle('running', training);
  ui.sample.disabled = sampling || sampleAfterChanges;
  ui.progress.hidden = !sampling;
  ui.progressBar.max = Math.max(1, sampleProgress.total);
  ui.progressBar.value = sampleProgress.done;
  ui.progressText.textContent = sampleProgress.total ? `step ${sampleProgress.done} of ${sampleProgress.total}` : 'starting…';
};

const refreshKernels = () => {
  kernels = kernelReport(session.runningBackend);
};

/** Redraws everything; while training, the canvases at most every 300 ms (drawing competes with the kernels). */
const render = ({ plots = true } = {}) => {
  refreshKernels();
  renderBanner();
  renderStats();
  if (plots || performance.now() - plotsDrawnAt > 300) renderPlots();
  renderControls();
};

// ---- training loop --------------------------------------------------------------------------------------------

const nextFrame = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

const fail = (e: unknown) => {
  running = false;
  lastError = e instanceof Error ? e.message : String(e);
  showMessage('error', `Training stopped: ${lastError}`);
  console.error(e);
};

/**
 * Samples step by step: after each DDIM step the progress bar moves, and at least every 30 ms the loop yields to the
 * page, so clicks and redraws are handled while it samples (Stop aborts after the step in flight).
 */
const doSample = async () => {
  if (sampling || changing) return; // a queued change samples (if need be) once it has been applied
  sampling = true;
  const abort = (sampleAbort = new AbortController());
  sampleProgress = { done: 0, total: 0 };
  renderControls();
  await nextFrame();
  try {
    let yielded = performance.now();
    const s = await session.sampleAsync({
      count: Number(ui.count.value),
      steps: Number(ui.steps.value),
      cfgScale: ui.cfg.disabled ? 1 : Number(ui.cfg.value),
      weights: ui.weights.value === 'ema' ? 'ema' : 'params',
      signal: abort.signal,
      onStep: async (done, total) => {
        sampleProgress = { done, total };
        if (performance.now() - yielded < 30) return;
        renderControls();
        await nextFrame();
        yielded = performance.now();
      },
    });
    sampleMs = s.ms;
    sampleEvents++;
    sinceSample = { steps: 0, ms: 0 };
    if (!s.x.data.every(Number.isFinite))
      showMessage('error', 'The samples contain non-finite values: the model has diverged (try Reset).');
  } catch (e) {
    if (e instanceof Error && e.name === 'AbortError') {
      if (!quietAbort) showMessage('info', 'Sampling stopped: the picture shows the previous samples.');
    } else {
      lastError = e instanceof Error ? e.message : String(e);
      showMessage('error', `Sampling failed: ${lastError}`);
      console.error(e);
    }
  } finally {
    sampling = false;
    sampleAbort = undefined;
    sampleProgress = { done: 0, total: 0 };
    quietAbort = false;
    render();
    if (resampleAfter) {
      resampleAfter = false;
      if (changing) resampleAfterChanges = true;
      else if (!running) void doSample();
    }
  }
};

/** Trains in chunks of about 100 ms, redraws, and samples when enough training time has passed since the last sample. */
const loop = async () => {
  while (running) {
    const t0 = performance.now();
    let n = 0;
    try {
      n = await session.trainWhile(() => running && performance.now() - t0 < 100);
    } catch (e) {
      fail(e);
      break;
    }
    const ms = performance.now() - t0;
    rateWindow = [...rateWindow, { n, ms }].slice(-30);
    sinceSample = { steps: sinceSample.steps + n, ms: sinceSample.ms + ms };
    // a sample costs about sampleMs: keep sampling under a sixth of the time, at most every 3 s and 25 steps
    if (sinceSample.steps >= 25 && sinceSample.ms >= Math.max(3000, 5 * sampleMs)) await doSample();
    render({ plots: false });
    await nextFrame();
  }
  render();
};

/** Starts the training loop; a click on Train also clears the message (the page's own restarts keep it: 'Saved ...'). */
const start = ({ clear = true } = {}) => {
  if (running || looping || changing) return;
  if (clear) clearMessage();
  running = true;
  rateWindow = [];
  render();
  looping = loop().finally(() => (looping = undefined));
};

/** Stops the loop and waits until its chunk (and on WebGPU the steps still in flight) has ended. */
const halt = async () => {
  running = false;
  await looping;
};

/**
 * Stops after the chunk in flight and samples with the final weights (doSample marks itself busy at once), unless Resume
 * was clicked while the loop stopped: then it trains on. (A change queued meanwhile takes that choice over.)
 */
const pause = async () => {
  if (!running) return;
  running = false;
  restartAfterPause = false;
  renderControls();
  await halt();
  if (restartAfterPause) {
    restartAfterPause = false;
    return start({ clear: false });
  }
  if (sampling && sampleAbort) {
    // a sampling run of earlier weights (Sample now while training, or the run Resume left going) is in flight: it
    // stops, and the final weights are sampled after it
    resampleAfter = true;
    quietAbort = true;
    sampleAbort.abort();
  } else await doSample();
};

/** Aborts the sampling in flight (quietly: the page stopped it, not the person) and waits until it has ended. */
const stopSampling = async () => {
  if (sampleAbort) {
    quietAbort = true;
    sampleAbort.abort();
  }
  while (sampling) await nextFrame();
};

/**
 * Applies a change that needs a new session state, or reads the session (a download) in the queue of changes. The loop
 * is told to stop at once (so it starts no new chunk) and the sampling in flight is aborted (its sampler must not run on
 * a replaced model; one that `keepSampling` goes on, unless the loop's); once both have ended, the changes queued so far
 * are applied in order, and the loop restarts if it ran (or Train was clicked meanwhile).
 */
const change = (f: () => void | Promise<void>, { keepSampling = false } = {}): Promise<void> => {
  changing++;
  // a Resume clicked while the loop stopped (after Pause) now waits for the changes
  if (running || (looping && restartAfterPause)) resumeAfterChanges = true;
  restartAfterPause = false;
  const stopsSampling = !keepSampling || looping !== undefined;
  if (stopsSampling && (sampling || looping)) resampleAfterChanges = true;
  running = false;
  if (stopsSampling) {
    resampleAfter = false;
    if (sampleAbort) {
      quietAbort = true;
      sampleAbort.abort();
    }
  }
  renderControls();
  const applied = changes.then(async () => {
    await halt();
    if (stopsSampling) await stopSampling();
    try {
      await session.syncAsync(); // webgpu reads its weights back only asynchronously; f may need them
      await f();
    } catch (e) {
      showMessage('error', e instanceof Error ? e.message : String(e));
    }
    rateWindow = [];
    sinceSample = { steps: 0, ms: 0 };
  });
  changes = applied.finally(() => {
    if (--changing > 0) return;
    pending = {}; // every queued change has been applied (or refused with a message): show the session's settings
    const resample = resampleAfterChanges;
    const clicked = sampleAfterChanges;
    resampleAfterChanges = sampleAfterChanges = false;
    render();
    if (resumeAfterChanges) {
      resumeAfterChanges = false;
      start({ clear: false });
    }
    // Sample now clicked meanwhile samples in any case (while training too, as it does then)
    if (clicked || (resample && !running && session.step > 0)) void doSample();
  });
  return changes;
};

// ---- controls -------------------------------------------------------------------------------------------------

/** A new session for the controls' model; the old one's kernels and device buffers are freed. */
const replaceSession = () => {
  const old = session;
  session = new Session(runFromControls(), old.backend.requested);
  models++;
  old.dispose();
  clearMessage();
};

ui.train.addEventListener('click', () => {
  if (changing) {
    // a change is being applied: Train/Pause decides whether the loop runs after it
    resumeAfterChanges = !resumeAfterChanges;
    renderControls();
  } else if (running) void pause();
  else if (looping) {
    // the loop is stopping after Pause: Resume/Pause decides whether it starts again once stopped
    restartAfterPause = !restartAfterPause;
    renderControls();
  } else start();
});
ui.reset.addEventListener('click', () => void change(replaceSession));
// each setting is recorded the moment it is chosen (the redraws until it is applied must not undo it)
ui.dataset.addEventListener('change', () => {
  pending.dataset = ui.dataset.value;
  void change(replaceSession);
});
ui.hidden.addEventListener('change', () => {
  pending.hidden = ui.hidden.value;
  void change(replaceSession);
});
ui.conditional.addEventListener('change', () => {
  pending.conditional = ui.conditional.checked;
  void change(replaceSession);
});
for (const r of objectiveRadios)
  r.addEventListener('change', () => {
    const kind = r.value as ObjectiveKind;
    pending.objective = kind;
    void change(() => session.setObjective(kind));
  });
ui.backend.addEventListener('change', () => {
  const requested = ui.backend.value as BackendRequest;
  pending.backend = requested;
  void change(() => session.setBackend(requested));
});
ui.sample.addEventListener('click', () => {
  if (!changing) return void doSample();
  sampleAfterChanges = true; // the model is changing: it is sampled once the change has been applied
  renderControls();
});
ui.stopSampling.addEventListener('click', (e) => {
  stopClicks = [...stopClicks, performance.now() - e.timeStamp];
  sampleAbort?.abort();
});
// the sample settings are read when a sampling run starts: while training, the next one uses them; while sampling
// (after Pause, or a click on Sample), the run in flight stops and the samples are drawn again with them; while a change
// is applied, they are drawn with them after it
for (const el of [ui.count, ui.steps, ui.cfg, ui.weights])
  el.addEventListener('change', () => {
    if (running) return;
    if (sampling && sampleAbort && !sampleAbort.signal.aborted) {
      resampleAfter = true;
      quietAbort = true;
      sampleAbort.abort();
    } else if (changing) resampleAfterChanges = true;
    else if (session.samples) void doSample();
  });

/** Saves the session as a checkpoint (in the queue of changes: after those chosen before it, with the weights read back). */
const saveCheckpoint = () => {
  try {
    const bytes = session.checkpointBytes();
    const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/octet-stream' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = session.checkpointName;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    showMessage(
      'info',
      `Saved ${session.checkpointName} (${(bytes.length / 1024).toFixed(0)} KiB): weights, ` +
        `Adam state, EMA and the run config. fusediff's CLI and any safetensors reader load it.`,
    );
  } catch (e) {
    showMessage('error', `Could not save the checkpoint: ${e instanceof Error ? e.message : String(e)}`);
  }
};
// the download waits for the changes chosen before it and stops the training loop meanwhile (Train/Pause clicked then
// decides whether it goes on); a sampling run after Pause or Sample now goes on
ui.download.addEventListener('click', () => void change(saveCheckpoint, { keepSampling: true }));

/** Loads a checkpoint in the queue of changes, so after the settings chosen before it; the loaded model is sampled. */
const loadFile = (file: File) =>
  change(async () => {
    const r = session.load(new Uint8Array(await file.arrayBuffer()), file.name);
    if (r.ok) {
      models++;
      resampleAfterChanges = true;
    }
    showMessage(r.ok ? 'info' : 'error', r.message, r.details);
  });
ui.file.addEventListener('change', () => {
  const f = ui.file.files?.[0];
  if (f) void loadFile(f);
  ui.file.value = '';
});
for (const target of [ui.drop, document.body]) {
  target.addEventListener('dragover', (e) => {
    e.preventDefault();
    ui.drop.classList.add('over');
  });
  target.addEventListener('dragleave', () => ui.drop.classList.remove('over'));
  target.addEventListener('drop', (e) => {
    e.preventDefault();
    e.stopPropagation();
    ui.drop.classList.remove('over');
    const f = (e as DragEvent).dataTransfer?.files?.[0];
    if (f) void loadFile(f);
  });
}
window.addEventListener('resize', () => renderPlots());

// ---- what tests (and the curious) can read --------------------------------------------------------------------

const state = () => ({
  ready: true,
  running: running || looping !== undefined,
  sampling,
  /** settings chosen but not yet applied (the page is stopping the loop or the sampling to apply them) */
  changing: changing > 0,
  /** what the controls show */
  controls: {
    dataset: ui.dataset.value,
    hidden: Number(ui.hidden.value),
    conditional: ui.conditional.checked,
    backend: ui.backend.value,
    objective: objectiveRadios.find((r) => r.checked)?.value ?? null,
    count: Number(ui.count.value),
    steps: Number(ui.steps.value),
    cfg: ui.cfg.disabled ? 1 : Number(ui.cfg.value),
    weights: ui.weights.value,
  },
  requestedBackend: session.backend.requested,
  backend: session.runningBackend,
  fallback: session.runtimeFallback ?? session.backend.fallback ?? null,
  renderer: renderer ?? null,
  adapter: adapter ?? null,
  kernels,
  /** models made so far: a new model, a reset or a loaded checkpoint makes one */
  models,
  /** what the Train button says */
  trainButton: ui.train.textContent,
  step: session.step,
  objective: session.objective,
  losses: session.losses.map((p) => p.loss),
  lossObjectives: session.losses.map((p) => p.objective),
  signature: session.signature,
  run: session.run,
  sampleEvents,
  sampleProgress,
  stopClicks,
  samples: session.samples && {
    count: session.samples.x.shape[0],
    steps: session.samples.steps,
    cfgScale: session.samples.cfgScale,
    weights: session.samples.weights,
    finite: session.samples.x.data.every(Number.isFinite),
    step: session.samples.step,
    objective: session.samples.objective,
    backend: session.samples.backend,
    logLikelihood: session.samples.logLikelihood,
    offData: session.samples.offData,
    coverage: session.samples.coverage,
  },
  /** pixels of each figure's drawing outside its canvas (all 0 when nothing is cut off) */
  figuresClipped: { loss: lossView.clipped() ?? null, scatter: scatterView.clipped() ?? null },
  stepsPerSecond: Number(ui.rate.textContent) || null,
  message: ui.message.hidden ? null : (messageText ?? null),
  messageDetails: ui.message.hidden ? null : (messageDetails ?? null),
  banner: ui.banner.textContent,
  lastError: lastError ?? null,
});
(window as unknown as { fusediffPlayground: { state: typeof state } }).fusediffPlayground = { state };

declare const __FUSEDIFF_VERSION__: string;
ui.about.textContent =
  `fusediff ${typeof __FUSEDIFF_VERSION__ === 'string' ? __FUSEDIFF_VERSION__ : ''} ` +
  `· kernels fusediff writes itself (WebAssembly, WGSL) or through gpu.js (WebGL2) · the same library code as in Node`;
render();
