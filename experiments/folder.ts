// The experiment folder: experiment.json says which spec it holds (so a second run continues it or is refused, never
// mixed in), jobs/ holds one result file per finished job (written atomically: a job is done when its file exists),
// and nothing is written outside the folder, even through a symlink planted in it.
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../storage/atomicWrite.ts';
import { RunFolderError } from '../runs/runTraining.ts';
import { configDifferences } from '../runs/trainer.ts';
import { jobFileName, type ExperimentPlan } from './plan.ts';
import { fileSafe, type ExperimentSpec } from './spec.ts';

export const MARKER = 'experiment.json';
const JOBS = 'jobs';

interface Marker {
  spec: ExperimentSpec;
  trainStage1: boolean;
  created: string;
}

const json = (v: unknown) => new TextEncoder().encode(`${JSON.stringify(v, null, 2)}\n`);

const readJson = (file: string, what: string): unknown => {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new RunFolderError(`${file} (${what}) cannot be read: ${(e as Error).message}`, { cause: e });
  }
};

const readMarker = (dir: string): Marker | undefined => {
  const file = path.join(dir, MARKER);
  if (!fs.existsSync(file)) return undefined;
  const m = readJson(file, 'the experiment this folder holds') as Partial<Marker> | null;
  if (!m || typeof m !== 'object' || typeof m.spec !== 'object' || typeof m.trainStage1 !== 'boolean')
    throw new RunFolderError(`${file} is not an experiment marker fusediff wrote (it needs spec and trainStage1)`);
  return m as Marker;
};

/**
 * Throws unless `target` resolves inside `dir`: the deepest part of it that exists is resolved through symlinks, so a
 * symlinked folder planted in the experiment folder cannot carry a write elsewhere.
 */
export const checkInside = (dir: string, target: string): void => {
  const root = fs.realpathSync(dir);
  let existing = path.resolve(target);
  while (!fs.existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  const real = fs.realpathSync(existing);
  const rest = path.relative(existing, path.resolve(target));
  const resolved = path.join(real, rest);
  const rel = path.relative(root, resolved);
  if (rel.startsWith('..') || path.isAbsolute(rel))
    throw new RunFolderError(`refusing to write ${target}: it resolves to ${resolved}, outside the experiment folder ${root}`);
};

/** The files and folders an experiment owns in its folder (what --force removes). */
const owned = (spec: ExperimentSpec): string[] => [
  MARKER,
  JOBS,
  'report.json',
  'report.md',
  ...spec.datasets.flatMap((d) => [
    d.dataset,
    `${d.dataset}-loss.png`,
    `${d.dataset}-cfg.png`,
    ...d.rows.map((r) => `${d.dataset}-${fileSafe(r.name)}.png`),
  ]),
];

const sameExperiment = (m: Marker, spec: ExperimentSpec, trainStage1: boolean): string[] => [
  ...configDifferences(m.spec, spec, '', true),
  ...(m.trainStage1 === trainStage1 ? [] : [`--train-stage1: saved ${m.trainStage1}, requested ${trainStage1}`]),
];

export interface OpenOptions {
  trainStage1: boolean;
  /** continue the experiment the folder holds (a shard or a merge continues too) */
  resume?: boolean;
  /** replace it: the files it owns are removed first */
  force?: boolean;
}

/**
 * Makes `dir` the folder of this experiment, before any work: a new or empty folder gets experiment.json; one that
 * holds this experiment is continued with resume (refused without it); one that holds another experiment, or
 * files fusediff did not write, is refused, naming what differs. Returns the job ids already done.
 */
export const openExperimentFolder = (dir: string, spec: ExperimentSpec, o: OpenOptions): void => {
  if (o.resume && o.force) throw new RunFolderError('--resume continues the experiment in --out and --force replaces it: give one');
  fs.mkdirSync(dir, { recursive: true });
  const marker = readMarker(dir);
  const entries = fs.readdirSync(dir);
  if (marker && o.force) for (const f of owned(marker.spec)) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  else if (marker) {
    const differences = sameExperiment(marker, spec, o.trainStage1);
    if (!o.resume)
      throw new RunFolderError(
        `${dir} already holds the experiment '${marker.spec.name}' (${doneJobs(dir).size} jobs done); nothing was changed. ` +
          'Pass --resume to continue it, --force to replace it, or another --out',
      );
    if (differences.length)
      throw new RunFolderError(
        `${dir} holds another experiment than the one asked for; it differs at:\n  ${differences.join('\n  ')}\n` +
          'Use the same spec and flags to continue it, or another --out',
      );
    return;
  } else if (entries.length)
    throw new RunFolderError(
      `${dir} is not empty and holds no ${MARKER}: it is not an experiment folder (or one from an older fusediff); ` +
        `it holds ${entries.slice(0, 5).join(', ')}${entries.length > 5 ? ', ...' : ''}. Choose another --out or empty it`,
    );
  writeFileAtomic(path.join(dir, MARKER), json({ spec, trainStage1: o.trainStage1, created: new Date().toISOString() }));
};

/** The ids of the jobs whose result files exist in `dir`. */
export const doneJobs = (dir: string): Set<string> => {
  const folder = path.join(dir, JOBS);
  if (!fs.existsSync(folder)) return new Set();
  const ids = fs
    .readdirSync(folder)
    .filter((f) => f.endsWith('.json'))
    .map((f) => (readJson(path.join(folder, f), 'a job result') as { id?: unknown }).id);
  return new Set(ids.filter((id): id is string => typeof id === 'string'));
};

export const readJob = <T>(dir: string, id: string): T | undefined => {
  const file = path.join(dir, JOBS, jobFileName(id));
  if (!fs.existsSync(file)) return undefined;
  const r = readJson(file, `the result of job ${id}`) as { id?: unknown; result?: unknown };
  if (r.id !== id || typeof r.result !== 'object' || r.result === null)
    throw new RunFolderError(`${file} is not the result of job ${id}; remove it to run that job again`);
  return r.result as T;
};

export const writeJob = (dir: string, id: string, result: unknown): void => {
  const file = path.join(dir, JOBS, jobFileName(id));
  checkInside(dir, file);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, json({ id, result }));
};

/** Files and folders a job leaves besides its result: a training job's run folder, a row's picture. */
export type Artifacts = (id: string) => string[];

/**
 * Brings the finished jobs of shard folders into `dir` (each job's artifacts first, its result file last, so a
 * job counts as done only once everything it made is there). Symlinks are not followed or copied. Returns the ids merged.
 */
export const mergeShards = (dir: string, plan: ExperimentPlan, shards: string[], artifacts: Artifacts): string[] => {
  const merged: string[] = [];
  for (const shard of shards) {
    const m = readMarker(shard);
    if (!m) throw new RunFolderError(`--merge: ${shard} holds no ${MARKER}: it is not a shard of an experiment`);
    const differences = sameExperiment(m, plan.spec, m.trainStage1);
    if (differences.length)
      throw new RunFolderError(`--merge: ${shard} ran another experiment; it differs at:\n  ${differences.join('\n  ')}`);
    const have = doneJobs(dir);
    for (const id of doneJobs(shard)) {
      if (have.has(id)) continue;
      for (const a of artifacts(id)) {
        const from = path.join(shard, a);
        if (!fs.existsSync(from)) continue;
        checkInside(dir, path.join(dir, a));
        fs.cpSync(from, path.join(dir, a), { recursive: true, filter: (src) => !fs.lstatSync(src).isSymbolicLink() });
      }
      writeJob(dir, id, readJob(shard, id));
      merged.push(id);
    }
  }
  return merged;
};
