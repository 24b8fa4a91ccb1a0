// `fusediff train` (stage 1) and `fusediff finetune` (stage 2): run folders that are never overwritten unasked,
// flags that are never ignored silently, progress on stderr and the result on stdout (or one JSON object).
import { resolveCheckpointRef } from '../storage/packageFiles.ts';
import path from 'node:path';
import { ConfigError, defaultConfig, finetuneBase, type RunConfig } from '../runs/config.ts';
import { loadRunCheckpoint } from '../runs/trainer.ts';
import { configFrom, type RunFlags } from './options.ts';
import { checkRunFolder, runDir, RunFolderError, runTraining, trainingJson, trainingSummary } from '../runs/runTraining.ts';
import type { TrainResult } from '../runs/trainer.ts';

export interface TrainFlags extends RunFlags {
  out?: string;
  resume?: boolean;
  force?: boolean;
  quiet?: boolean;
  json?: boolean;
}

/** The sp objective's own knobs: a run with another objective would ignore them. */
const SP_FIELDS = ['layer', 'tPrime', 'tPrimeOffset', 'distance', 'renoise', 'perceptual'] as const;
const SP_FLAGS: Record<(typeof SP_FIELDS)[number], string> = {
  layer: '--layer',
  tPrime: '--t-prime',
  tPrimeOffset: '--t-prime-offset',
  distance: '--distance',
  renoise: '--renoise',
  perceptual: '--perceptual',
};

/** Refuses sp settings that differ from their defaults in a run whose objective is not sp: they would do nothing. */
const refuseIgnoredSpSettings = (config: RunConfig, command: string): void => {
  if (config.objective.kind === 'sp') return;
  const defaults = defaultConfig(config.data.name).objective;
  const set = SP_FIELDS.filter((k) => config.objective[k] !== defaults[k]);
  if (set.length)
    throw new ConfigError(
      `${command}: ${set.map((k) => `objective.${k} (${SP_FLAGS[k]})`).join(', ')} configure${set.length > 1 ? '' : 's'} the sp ` +
        `objective, but this run's objective is "${config.objective.kind}", which would ignore ${set.length > 1 ? 'them' : 'it'}`,
    );
};

const report = (r: TrainResult, f: TrainFlags, command: string): number => {
  if (f.json) console.log(JSON.stringify(trainingJson(r, command)));
  else console.log(trainingSummary(r, command));
  return r.interrupted ? 130 : 0;
};

export const trainCommand = async (f: TrainFlags): Promise<number> => {
  const requested = configFrom(f);
  if (requested.objective.kind !== 'mse')
    throw new ConfigError(
      `train trains stage 1 with the MSE objective only; objective.kind "${requested.objective.kind}" would be ignored. ` +
        'Fine-tune a stage-1 checkpoint with it instead: fusediff finetune --from <checkpoint> --objective sp',
    );
  refuseIgnoredSpSettings(requested, 'train');
  const dir = runDir(f.out, `${requested.data.name}-mse`);
  checkRunFolder(dir, { resume: f.resume, force: f.force });
  let config = requested;
  if (f.resume) {
    // a resumed run continues with its own config; the flags given may change only what resume allows
    const checkpoint = path.join(dir, 'checkpoint.safetensors');
    const saved = loadRunCheckpoint(checkpoint).config;
    if (saved.init)
      throw new RunFolderError(
        `${checkpoint} is a fine-tune of ${saved.init.from}; continue it with fusediff finetune --resume --out ${dir}`,
      );
    config = configFrom(f, {}, { ...saved.run, backend: 'auto' }); // the backend may change on resume: auto unless given
  }
  const r = await runTraining(config, dir, { resume: f.resume, replace: f.force, quiet: f.quiet, label: 'train (mse)' });
  return report(r, f, 'train');
};

export interface FinetuneFlags extends TrainFlags {
  from?: string;
  objective?: string;
  layer?: string;
  tPrime?: string;
  tPrimeOffset?: string;
  distance?: string;
  renoise?: string;
  perceptual?: string;
}

export const finetuneCommand = async (f: FinetuneFlags): Promise<number> => {
  const objective = {
    'objective.kind': f.objective ?? (f.resume ? undefined : 'sp'),
    'objective.layer': f.layer,
    'objective.tPrime': f.tPrime,
    'objective.tPrimeOffset': f.tPrimeOffset === undefined ? undefined : Number(f.tPrimeOffset),
    'objective.distance': f.distance,
    'objective.renoise': f.renoise,
    'objective.perceptual': f.perceptual,
  };
  // pretrained:NAME and a run folder name a file (resolveCheckpointRef); the run records the file's path
  let from = f.from === undefined ? undefined : path.resolve(resolveCheckpointRef(f.from));
  let config: RunConfig | undefined;
  let dir: string;
  if (from === undefined) {
    if (!f.resume) throw new RunFolderError('finetune needs --from <stage-1 checkpoint> (only --resume may leave it out)');
    if (f.out === undefined)
      throw new RunFolderError('finetune --resume needs --out <run folder> (or --from, which names the default out/<dataset>-<objective>)');
    dir = runDir(f.out, '');
  } else {
    // the stage-1 run's config is the base: same data, model and schedule; the objective and training knobs change
    config = configFrom(f, objective, finetuneBase(loadRunCheckpoint(from).config.run));
    dir = runDir(f.out, `${config.data.name}-${config.objective.kind}`);
  }
  checkRunFolder(dir, { resume: f.resume, force: f.force, from });
  if (f.resume) {
    const saved = loadRunCheckpoint(path.join(dir, 'checkpoint.safetensors')).config;
    if (!saved.init)
      throw new RunFolderError(
        `${path.join(dir, 'checkpoint.safetensors')} is a stage-1 run (it records no --from); continue it with fusediff train --resume`,
      );
    if (from !== undefined && from !== path.resolve(resolveCheckpointRef(saved.init.from)))
      throw new RunFolderError(
        `finetune --resume: the run in ${dir} started from ${saved.init.from}, but --from is ${f.from}; ` +
          'a resumed fine-tune keeps its stage-1 checkpoint: leave --from out or give that one',
      );
    from = saved.init.from;
    config = configFrom(f, objective, { ...saved.run, backend: 'auto' });
  }
  if (!config) throw new Error('finetune: no config (unreachable)');
  refuseIgnoredSpSettings(config, 'finetune');
  const r = await runTraining(config, dir, {
    resume: f.resume,
    replace: f.force,
    from,
    quiet: f.quiet,
    label: `finetune (${config.objective.kind})`,
  });
  return report(r, f, 'finetune');
};
