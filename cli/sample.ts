// `fusediff sample` (pictures and a samples file from a checkpoint) and `fusediff eval` (metrics at one or more
// guidance scales, with a report).
import path from 'node:path';
import { writeFileAtomic } from '../storage/atomicWrite.ts';
import { encodeSafetensors } from '../storage/safetensors.ts';
import { resolveBackend, type BackendRequest } from '../compiler/index.ts';
import { loadModel, sampleRow, type ExperimentReport, type RowReport } from '../experiments/run.ts';
import { printComparison, writeReport } from '../experiments/report.ts';
import { backendSummary, phasesOf } from '../experiments/backendLine.ts';
import { lossPicture, rowsCfgPicture } from '../experiments/pictures.ts';
import { resolveCheckpointRef } from '../storage/packageFiles.ts';
import { readLosses } from '../runs/runTraining.ts';
import type { Json, RunConfig } from '../runs/config.ts';
import { definedOverrides } from './options.ts';

export interface SampleFlags {
  checkpoint: string;
  /** guidance scales; default the config's sample.cfgScales (just 1 for an unconditional model) */
  cfg?: number[];
  count?: number;
  steps?: number;
  sampler?: string;
  seed?: number;
  weights?: string;
  backend?: string;
  out?: string;
  quiet: boolean;
  json?: boolean;
}

/**
 * The default output folder of `sample` / `eval`: under out/, named after the run (the checkpoint's folder when
 * the file is a run's checkpoint.safetensors, else the file's name), never next to the checkpoint, which may be
 * in a committed folder such as pretrained/.
 */
export const defaultOutDir = (checkpoint: string, command: 'sample' | 'eval'): string => {
  const abs = path.resolve(resolveCheckpointRef(checkpoint)); // pretrained:NAME is named NAME
  const name = path.basename(abs) === 'checkpoint.safetensors' ? path.basename(path.dirname(abs)) : path.basename(abs, '.safetensors');
  return path.resolve('out', command === 'sample' ? 'samples' : 'eval', name);
};

const overridesOf = (f: SampleFlags): Record<string, Json> =>
  definedOverrides({
    'sample.count': f.count,
    'sample.steps': f.steps,
    'sample.sampler': f.sampler,
    'sample.seed': f.seed,
    'sample.weights': f.weights,
    backend: f.backend,
  });

const rowsOf = async (f: SampleFlags, dir: string): Promise<{ rows: RowReport[]; run: RunConfig }> => {
  const ck = loadModel(f.checkpoint);
  const rows: RowReport[] = [];
  const run = ck.config.run;
  const scales = f.cfg ?? (run.data.conditional ? run.sample.cfgScales : [1]);
  for (const cfg of scales)
    rows.push(
      await sampleRow(
        ck,
        { name: cfg === 1 ? 'no CFG' : `CFG ${cfg}`, model: path.basename(f.checkpoint), cfg },
        overridesOf(f),
        dir,
        f.quiet,
      ),
    );
  return { rows, run };
};

/** Writes <out>/<dataset>-<row>.png and <out>/samples-cfg<w>.safetensors (tensors `samples`, and `classes` when conditional). */
export const sampleCommand = async (f: SampleFlags): Promise<number> => {
  const dir = f.out === undefined ? defaultOutDir(f.checkpoint, 'sample') : path.resolve(f.out);
  const results: Record<string, Json>[] = [];
  for (const r of (await rowsOf(f, dir)).rows) {
    const tensors: Record<string, { shape: number[]; data: Float64Array }> = {
      samples: { shape: [...r.samples!.shape], data: r.samples!.data },
    };
    if (r.classes) tensors.classes = { shape: [r.classes.length], data: Float64Array.from(r.classes) };
    const file = path.join(dir, `samples-cfg${r.cfgScale}.safetensors`);
    writeFileAtomic(file, encodeSafetensors(tensors, { fusediff: JSON.stringify({ checkpoint: f.checkpoint, cfgScale: r.cfgScale }) }));
    results.push({
      name: r.name,
      cfgScale: r.cfgScale,
      count: r.samples!.shape[0],
      seconds: r.sampleSeconds,
      backend: r.backend,
      backendReason: r.backendReason ?? null,
      picture: path.join(dir, r.picture),
      samples: file,
    });
    if (!f.json)
      console.log(
        `${r.name}: ${r.samples!.shape[0]} samples in ${r.sampleSeconds.toFixed(1)} s on ${r.backend} ` +
          `-> ${path.join(dir, r.picture)}, ${file}`,
      );
  }
  if (f.json)
    console.log(JSON.stringify({ command: 'sample', checkpoint: path.resolve(resolveCheckpointRef(f.checkpoint)), dir, rows: results }));
  return 0;
};

/**
 * The eval report's pictures: `<dataset>-loss.png` when the checkpoint's run folder has its losses.json, and
 * `<dataset>-cfg.png` (each metric against the CFG scale) when more than one scale was sampled.
 */
const evalPictures = async (
  checkpoint: string,
  run: RunConfig,
  rows: readonly RowReport[],
  dir: string,
  losses: number[] | undefined,
): Promise<{ loss?: string; cfg?: string }> => {
  const pictures: { loss?: string; cfg?: string } = {};
  const dataset = rows[0].dataset;
  const name = path.basename(checkpoint);
  if (losses?.length) {
    pictures.loss = `${dataset}-loss.png`;
    await lossPicture(
      { title: `${dataset} · training loss · ${name}`, subtitle: [`${losses.length} steps, from the run's losses.json`] },
      [{ name, losses, objective: run.objective.kind }],
      path.join(dir, pictures.loss),
    );
  }
  pictures.cfg = await rowsCfgPicture(rows, name, () => name, dir);
  return pictures;
};

/** Samples at every --cfg scale, evaluates, and writes <out>/report.md and report.json (with the pictures above). */
export const evalCommand = async (f: SampleFlags): Promise<number> => {
  const dir = f.out === undefined ? defaultOutDir(f.checkpoint, 'eval') : path.resolve(f.out);
  const t0 = performance.now();
  // read before sampling: a malformed loss log must not cost the sampling
  const losses = readLosses(path.dirname(f.checkpoint));
  const { rows, run } = await rowsOf(f, dir);
  // the backends the rows' sampler and classifier ran on (as sampleRow: the one the checkpoint recorded is not inherited)
  const phases = phasesOf([{ models: [], rows }]);
  const report: ExperimentReport = {
    name: `eval ${f.checkpoint}`,
    ...backendSummary(phases, resolveBackend((f.backend ?? 'auto') as BackendRequest)),
    phases,
    startedAt: new Date().toISOString(),
    seconds: (performance.now() - t0) / 1000,
    command: `fusediff ${process.argv.slice(2).join(' ')}`,
    complete: true,
    missing: [],
    datasets: [{ dataset: rows[0].dataset, models: [], rows, pictures: await evalPictures(f.checkpoint, run, rows, dir, losses) }],
  };
  writeReport(dir, report);
  if (f.json) {
    const { datasets, command, ...rest } = report;
    const rowsJson = datasets[0].rows.map(({ samples: _s, classes: _c, ...row }) => ({ ...row, picture: path.join(dir, row.picture) }));
    console.log(
      JSON.stringify({ command: 'eval', commandLine: command, ...rest, dir, report: path.join(dir, 'report.md'), rows: rowsJson }),
    );
    return 0;
  }
  printComparison(report);
  console.log(`\nreport: ${path.join(dir, 'report.md')}`);
  return 0;
};
