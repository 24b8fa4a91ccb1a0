// A training run in a folder: the checkpoint, config.json and losses.json, a progress bar and Ctrl-C handling.
// The CLI's train/finetune commands and the experiments both run training through it.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../storage/atomicWrite.ts';
import type { RunConfig } from './config.ts';
import { train, type TrainResult } from './trainer.ts';
import { progressBar } from './progress.ts';
import type { AutoInjection } from '../train/autoChoice.ts';

export const runDir = (out: string | undefined, fallback: string): string => path.resolve(out ?? path.join('out', fallback));

/** A run folder that must not be used as asked: it holds a run, it is missing, it cannot be written. */
export class RunFolderError extends Error {
  override name = 'RunFolderError';
}

/** The files that make a folder a run: a checkpoint or the run's config. losses.json goes with them. */
export const RUN_FILES = ['checkpoint.safetensors', 'config.json'] as const;
const OWNED_FILES = [...RUN_FILES, 'losses.json'];

/** The per-step losses a run folder's losses.json holds, or undefined where it has none; a malformed one is an error naming it. */
export const readLosses = (dir: string): number[] | undefined => {
  const log = path.join(dir, 'losses.json');
  if (!fs.existsSync(log)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(log, 'utf8'));
  } catch (e) {
    throw new RunFolderError(`${log} cannot be read as the run's loss log: ${(e as Error).message}`, { cause: e });
  }
  const losses = (parsed as { losses?: unknown } | null)?.losses;
  if (!Array.isArray(losses) || !losses.every((x) => typeof x === 'number'))
    throw new RunFolderError(`${log} is not a loss log: it needs { "losses": [numbers] }`);
  return losses;
};

const realOrResolved = (p: string): string => {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
};

/**
 * Refuses, before anything is computed or written, what would lose work: an existing run folder without
 * `resume` or `force`, `resume` without a checkpoint (naming what it looked for), both at once, and (for a
 * fine-tune) an out folder that holds the `from` checkpoint.
 */
export const checkRunFolder = (dir: string, o: { resume?: boolean; force?: boolean; from?: string }): void => {
  if (o.resume && o.force)
    throw new RunFolderError(`--resume continues the run in ${dir} and --force replaces it: give one of them, not both`);
  if (o.from !== undefined && realOrResolved(path.dirname(o.from)) === realOrResolved(dir))
    throw new RunFolderError(
      `--out ${dir} holds the --from checkpoint ${o.from}: this run would write its own checkpoint.safetensors, ` +
        'config.json and losses.json beside (or over) the weights it starts from; choose another --out',
    );
  const checkpoint = path.join(dir, 'checkpoint.safetensors');
  if (o.resume) {
    if (fs.existsSync(checkpoint)) return;
    const where = !fs.existsSync(dir)
      ? 'the folder does not exist'
      : `the folder holds ${fs.readdirSync(dir).sort().join(', ') || 'nothing'}`;
    throw new RunFolderError(
      `--resume: no checkpoint to resume: looked for ${checkpoint}, but ${where}. ` +
        'Check --out (or --dataset, which names the default out/<dataset>-<objective>), or drop --resume to start a new run',
    );
  }
  const found = fs.existsSync(dir) ? RUN_FILES.filter((f) => fs.existsSync(path.join(dir, f))) : [];
  if (found.length && !o.force)
    throw new RunFolderError(
      `${dir} already holds a run (${found.join(', ')}); nothing was changed. ` +
        'Pass --resume to continue it, --force to replace it, or another --out',
    );
};

/**
 * Throws a RunFolderError unless a file can be created in `dir` (checked before the first step, not at the first save).
 * The probe is a fresh random name opened exclusively ('wx'), so it never follows or truncates a file or a symlink
 * already there, and only the probe this call created is removed.
 */
export const checkWritable = (dir: string): void => {
  const probe = path.join(dir, `.fusediff-write-test-${process.pid}-${randomBytes(8).toString('hex')}`);
  let fd: number;
  try {
    fd = fs.openSync(probe, 'wx');
  } catch (e) {
    throw new RunFolderError(`cannot write to the run folder ${dir}: ${(e as Error).message}; nothing was trained`, { cause: e });
  }
  fs.closeSync(fd);
  fs.rmSync(probe, { force: true });
};

/** Removes `dir` and its parents up to `top` (the first folder mkdir created) where they are empty. */
const removeEmptyFolders = (dir: string, top: string): void => {
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      if (fs.readdirSync(d).length) return;
      fs.rmdirSync(d);
    } catch {
      return;
    }
    if (d === top || path.dirname(d) === d) return;
  }
};

const json = (v: unknown) => new TextEncoder().encode(`${JSON.stringify(v, null, 2)}\n`);

const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);

/** The one-line result of a training run, for people. */
/**
 * One line on a finished or interrupted run; an interrupted one names its checkpoint once and, where `command` is
 * given (train or finetune), the command that continues it.
 */
export const trainingSummary = (r: TrainResult, command?: string): string => {
  const loss = `mean loss of the last 50 steps ${mean(r.losses.slice(-50)).toPrecision(4)}`;
  if (!r.interrupted)
    return `trained steps ${r.startStep + 1}..${r.step} in ${r.seconds.toFixed(1)} s on ${r.backend}; ${loss}; checkpoint ${r.checkpoint}`;
  const resume = command ? `; continue with: fusediff ${command} --out ${path.dirname(r.checkpoint)} --resume` : '';
  return `interrupted at step ${r.step} of ${r.setup.config.train.steps}: saved to ${r.checkpoint}; ${loss}${resume}`;
};

/** The result of a training run as JSON (`--json`): what ran, where it is, how it went. */
export const trainingJson = (r: TrainResult, command: string) => ({
  command,
  checkpoint: r.checkpoint,
  dir: path.dirname(r.checkpoint),
  startStep: r.startStep,
  step: r.step,
  steps: r.setup.config.train.steps,
  interrupted: r.interrupted,
  seconds: r.seconds,
  backend: r.backend,
  backendReason: r.backendReason,
  meanLossLast50: mean(r.losses.slice(-50)),
  objective: r.setup.config.objective.kind,
  dataset: r.setup.config.data.name,
});

/**
 * Trains in `dir` under a progress bar (on stderr); the first Ctrl-C stops after the step in flight and saves, a
 * second one exits at once. The folder is checked writable before the first step, and a folder this call created
 * is removed again if the run fails before writing anything into it. The result is returned, not printed
 * (trainingSummary, trainingJson).
 */
export const runTraining = async (
  config: RunConfig,
  dir: string,
  opts: {
    resume?: boolean;
    from?: string;
    quiet?: boolean;
    label?: string;
    /** fixes auto's adapter, cache or timer (tests) */
    auto?: AutoInjection;
    replace?: boolean;
    /** the caller's stop flag: then the caller handles Ctrl-C (an experiment stops its other jobs too) */
    stopper?: { stop: boolean };
  },
): Promise<TrainResult> => {
  let created: string | undefined;
  try {
    created = fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new RunFolderError(`cannot create the run folder ${dir}: ${(e as Error).message}; nothing was trained`, { cause: e });
  }
  try {
    checkWritable(dir);
    // --force: the old run's files go now, so that what the folder holds is this run's alone
    if (opts.replace) for (const f of OWNED_FILES) fs.rmSync(path.join(dir, f), { force: true });
    return await trainIn(config, dir, opts);
  } catch (e) {
    if (created !== undefined) removeEmptyFolders(dir, created);
    throw e;
  }
};

const trainIn = async (
  config: RunConfig,
  dir: string,
  opts: { resume?: boolean; from?: string; quiet?: boolean; label?: string; stopper?: { stop: boolean }; auto?: AutoInjection },
): Promise<TrainResult> => {
  const checkpoint = path.join(dir, 'checkpoint.safetensors');
  const stopper = opts.stopper ?? { stop: false };
  const onSigint = () => {
    if (stopper.stop) process.exit(130);
    stopper.stop = true;
    process.stderr.write('\nCtrl-C: saving at the end of this step (press again to quit without saving)\n');
  };
  // the loss log a resumed run extends is read first: a malformed one must not cost the training
  const previousLog = opts.resume ? (readLosses(dir) ?? []) : [];
  if (!opts.stopper) process.on('SIGINT', onSigint);
  let bar: ReturnType<typeof progressBar> | undefined;
  try {
    const r = await train({
      config,
      checkpoint,
      resume: opts.resume,
      from: opts.from,
      stopper,
      auto: opts.auto,
      // auto's choice and why (on a GPU machine: the timings of webgpu and wasm), before the progress bar starts
      onBackend: (reason) => {
        if (!opts.quiet) process.stderr.write(`backend: ${reason}\n`);
      },
      onStep: ({ step, loss, total, startStep }) => {
        if (opts.quiet) return;
        bar ??= progressBar(opts.label ?? config.objective.kind, total, startStep, { loss: '-' });
        bar.update(step, { loss: loss.toFixed(4) });
      },
    });
    bar?.stop();
    writeFileAtomic(path.join(dir, 'config.json'), json(config));
    const previous = previousLog.slice(0, r.startStep);
    writeFileAtomic(path.join(dir, 'losses.json'), json({ losses: [...previous, ...r.losses], backend: r.backend, seconds: r.seconds }));
    return r;
  } finally {
    bar?.stop();
    process.off('SIGINT', onSigint);
  }
};
