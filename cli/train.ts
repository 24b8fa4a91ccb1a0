// `fusediff train` (stage 1) and `fusediff finetune` (stage 2): run directories, progress, Ctrl-C.
import { loadCheckpoint } from '../storage/checkpoint.ts';
import { finetuneBase } from '../runs/config.ts';
import { StoredConfig } from '../runs/trainer.ts';
import { configFrom, type RunFlags } from './options.ts';
import { runDir, runTraining } from '../runs/runTraining.ts';

export interface TrainFlags extends RunFlags {
  out?: string;
  resume?: boolean;
  quiet?: boolean;
}

export const trainCommand = async (f: TrainFlags): Promise<number> => {
  const config = configFrom(f, { 'objective.kind': 'mse' });
  const dir = runDir(f.out, `${config.data.name}-mse`);
  const r = await runTraining(config, dir, { resume: f.resume, quiet: f.quiet, label: 'train (mse)' });
  return r.interrupted ? 130 : 0;
};

export interface FinetuneFlags extends TrainFlags {
  from: string;
  objective?: string;
  layer?: string;
  tPrime?: string;
  distance?: string;
}

export const finetuneCommand = async (f: FinetuneFlags): Promise<number> => {
  // the stage-1 run's config is the base: same data, model and schedule; the objective and training knobs change
  const stage1 = loadCheckpoint(f.from, { configCodec: StoredConfig }).config.run;
  const config = configFrom(
    f,
    { 'objective.kind': f.objective ?? 'sp', 'objective.layer': f.layer, 'objective.tPrime': f.tPrime, 'objective.distance': f.distance },
    finetuneBase(stage1),
  );
  const dir = runDir(f.out, `${config.data.name}-${config.objective.kind}`);
  const r = await runTraining(config, dir, {
    resume: f.resume,
    from: f.from,
    quiet: f.quiet,
    label: `finetune (${config.objective.kind})`,
  });
  return r.interrupted ? 130 : 0;
};
