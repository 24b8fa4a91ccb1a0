// Drawing samples from a trained run: the compiled DDIM/DDPM sampler in batches, with balanced classes for a
// conditional model and classifier-free guidance at any scale.
import type { NDArray } from '../core/ndarray.ts';
import type { Params } from '../dsl/params.ts';
import { denoiserPredict } from '../models/samplers.ts';
import { createSamplerAuto, type SamplerAutoOptions } from '../models/samplerAuto.ts';
import { cliChoiceCache } from '../runs/autoBackendCache.ts';
import type { RunConfig } from '../runs/config.ts';
import { checkMemory, estimateSampleMemory, planLimitError, toData, type RunSetup } from '../runs/setup.ts';

export interface SampleOptions {
  weights: Params;
  cfgScale: number;
  /** guidance rescale phi in [0, 1] (Lin et al. 2023; 0 = plain CFG) */
  guidanceRescale?: number;
  count: number;
  batchSize: number;
  seed: number;
  sampler: RunConfig['sample']['sampler'];
  steps: number;
  eta: number;
  backend: RunConfig['backend'];
  /** a conditional model sampled with the null class only: the unconditional model CFG training also learns */
  unconditional?: boolean;
  /** how `auto` is timed (default: the CLI's file cache; tests inject an adapter and a timer); `log` hears the reason */
  auto?: SamplerAutoOptions;
}

export interface Samples {
  /** [count, ...sampleShape] in the data set's layout */
  samples: NDArray;
  /** the class each sample was conditioned on (conditional models) */
  classes?: Int32Array;
  seconds: number;
  backend: string;
  /** why that backend: requested, or auto's choice (timed on a hardware WebGPU adapter) */
  backendReason: string;
}

/**
 * Class ids for `count` samples, deterministic: MNIST cycles 0..9; a 2-D mixture allocates its modes in proportion
 * to their true masses along a golden-ratio sequence, so every batch holds about the right mix.
 */
export const balancedClasses = (s: RunSetup, count: number): Int32Array => {
  const K = s.numClasses!;
  if (s.dataset.kind !== 'points') return Int32Array.from({ length: count }, (_, i) => i % K);
  const cum: number[] = [];
  s.dataset.mixture.coverageMass.reduce((acc, m, k) => (cum[k] = acc + m), 0);
  return Int32Array.from({ length: count }, (_, i) => {
    const u = (0.5 + i * 0.6180339887498949) % 1;
    const k = cum.findIndex((c) => u < c);
    return k < 0 ? K - 1 : k;
  });
};

export const drawSamples = async (s: RunSetup, o: SampleOptions, onBatch?: (done: number, total: number) => void): Promise<Samples> => {
  const conditional = s.numClasses !== undefined;
  if (o.unconditional && (!conditional || o.cfgScale !== 1))
    throw new Error('sample: unconditional rows need a conditional (CFG-trained) model and cfgScale 1');
  if (!conditional && o.cfgScale !== 1)
    throw new Error(
      `sample: cfgScale ${o.cfgScale} needs a class-conditional model; this run's model is unconditional (data.conditional false)`,
    );
  const B = Math.min(o.batchSize, o.count);
  // before the weights are converted or a kernel compiled: a sampler or a sample set that cannot fit is refused,
  // naming sample.batchSize, sample.count and the model's sizes (the batches bound the kernel memory; every sample
  // is kept, for the metrics and the samples file, so sample.count bounds the rest)
  const task = { task: `sampler${o.cfgScale !== 1 ? ' with guidance' : ''}`, batchField: 'sample.batchSize', batch: B };
  const estimate = estimateSampleMemory(s, { count: o.count, batchSize: o.batchSize, guided: o.cfgScale !== 1 });
  checkMemory(s, estimate, { ...task, countField: ['sample.count', o.count], backend: o.backend });
  // under auto the step compiles here (timed on a hardware WebGPU adapter), else at the first batch: either may hit a plan limit
  const sampler = await createSamplerAuto(
    {
      predict: denoiserPredict(s.model),
      shape: [B, ...s.model.dataShape],
      schedule: s.schedule,
      prediction: s.config.prediction,
      sampler: o.sampler,
      steps: o.steps,
      eta: o.eta,
      cfgScale: o.cfgScale,
      guidanceRescale: o.guidanceRescale,
      clipX0: s.dataset.kind === 'image' ? 1 : undefined,
      seed: o.seed,
      backend: o.backend,
      params: o.weights,
      nullClass: s.numClasses,
      hasNullClass: conditional,
    },
    { cache: cliChoiceCache(), ...o.auto },
  ).catch((e: unknown) => {
    throw planLimitError(e, s, task) ?? e;
  });
  const per = s.model.dataShape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(o.count * per);
  const classes = !conditional ? undefined : o.unconditional ? new Int32Array(o.count).fill(s.numClasses!) : balancedClasses(s, o.count);
  const t0 = performance.now();
  let backend = '',
    backendReason = '';
  for (let start = 0, draw = 0; start < o.count; start += B, draw++) {
    const n = Math.min(B, o.count - start);
    const cls = classes && Array.from({ length: B }, (_, i) => classes[start + Math.min(i, n - 1)]);
    let r;
    try {
      r = await sampler.sampleAsync({ classes: cls, draw });
    } catch (e) {
      sampler.dispose();
      throw planLimitError(e, s, task) ?? e;
    }
    ({ backend, backendReason } = r);
    data.set(r.data.subarray(0, n * per), start * per);
    onBatch?.(start + n, o.count);
  }
  sampler.dispose(); // one sampler per row: free its kernels before the next
  return {
    samples: toData(s, { shape: [o.count, ...s.model.dataShape], data }),
    classes: o.unconditional ? undefined : classes,
    seconds: (performance.now() - t0) / 1000,
    backend,
    backendReason,
  };
};
