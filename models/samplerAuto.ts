// createSamplerAuto: createSampler whose `auto` backend is chosen by timing one denoising step on a hardware WebGPU
// adapter against wasm (train/compilePlanAuto.ts: the training step's chooser and cache); the step is what a sampler
// runs `steps` times per batch. The initial noise is one tiny plan per batch: it runs where the step does, untimed.
import { flattenParams } from '../dsl/params.ts';
import { compilePlanAuto, type PlanAutoOptions } from '../train/compilePlanAuto.ts';
import { buildSampler, checkedPlan, createSampler, samplerStepGraph, type Sampler, type SamplerOptions } from './samplers.ts';

/** How createSamplerAuto times `auto` (compilePlanAuto's options), and which use of the step it times. */
export interface SamplerAutoOptions extends Omit<PlanAutoOptions, 'inputs'> {
  /** time the conditional step (with class ids); default: with guidance, or where the model has a null class */
  conditional?: boolean;
}

/**
 * createSampler, where `backend` 'auto' (the default) on a hardware WebGPU adapter compiles one denoising step on
 * webgpu and on wasm, times a few runs of each on the sampler's first step, keeps the faster and frees the other; the
 * choice is cached per step graph and adapter, and `SampleResult.backendReason` says which and why. A software
 * adapter is never timed (auto's untimed choice stands); a named backend or 'interpret' is createSampler.
 */
export const createSamplerAuto = async (o: SamplerOptions, auto: SamplerAutoOptions = {}): Promise<Sampler> => {
  if ((o.backend ?? 'auto') !== 'auto') return createSampler(o);
  const conditional = auto.conditional ?? ((o.cfgScale ?? 1) !== 1 || o.hasNullClass === true);
  const first = checkedPlan(o)[0]; // before anything compiles: options that cannot sample throw here
  const [B] = o.shape;
  // the first step's own scalars and the sampler's weights: a timed run computes what a real one does (x is zeros)
  const inputs: Record<string, Float32Array> = {
    t: new Float32Array(B).fill(first.t),
    ...Object.fromEntries((['alpha', 'sigma', 'cX0', 'cEps', 'cXt', 'cNoise'] as const).map((k) => [k, Float32Array.of(first[k])])),
    ...Object.fromEntries(flattenParams(o.params ?? {}).map(([p, v]) => [`params.${p}`, Float32Array.from(v.data)])),
  };
  const graph = samplerStepGraph(o, conditional);
  const executable = await compilePlanAuto(graph, 'auto', { ...auto, inputs });
  try {
    return buildSampler(o, { conditional, executable });
  } catch (e) {
    executable.dispose();
    throw e;
  }
};
