// `fusediff sample` (pictures and a samples file from a checkpoint) and `fusediff eval` (metrics at one or more
// guidance scales, with a report).
import path from 'node:path';
import { writeFileAtomic } from '../storage/checkpoint.ts';
import { encodeSafetensors } from '../storage/safetensors.ts';
import { resolveBackend } from '../compiler/index.ts';
import { loadModel, sampleRow, type ExperimentReport, type RowReport } from '../experiments/run.ts';
import { printComparison, writeReport } from '../experiments/report.ts';
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
}

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
  const dir = path.resolve(f.out ?? path.join(path.dirname(f.checkpoint), 'samples'));
  for (const r of (await rowsOf(f, dir)).rows) {
    const tensors: Record<string, { shape: number[]; data: Float64Array }> = {
      samples: { shape: [...r.samples!.shape], data: r.samples!.data },
    };
    if (r.classes) tensors.classes = { shape: [r.classes.length], data: Float64Array.from(r.classes) };
    const file = path.join(dir, `samples-cfg${r.cfgScale}.safetensors`);
    writeFileAtomic(file, encodeSafetensors(tensors, { fusediff: JSON.stringify({ checkpoint: f.checkpoint, cfgScale: r.cfgScale }) }));
    console.log(
      `${r.name}: ${r.samples!.shape[0]} samples in ${r.sampleSeconds.toFixed(1)} s on ${r.backend} ` +
        `-> ${path.join(dir, r.picture)}, ${file}`,
    );
  }
  return 0;
};

/** Samples at every --cfg scale, evaluates, and writes <out>/report.md and report.json. */
export const evalCommand = async (f: SampleFlags): Promise<number> => {
  const dir = path.resolve(f.out ?? path.join(path.dirname(f.checkpoint), 'eval'));
  const t0 = performance.now();
  const { rows, run } = await rowsOf(f, dir);
  const resolved = resolveBackend((f.backend ?? run.backend) as never);
  const report: ExperimentReport = {
    name: `eval ${f.checkpoint}`,
    backend: resolved.name,
    backendReason: resolved.reason,
    startedAt: new Date().toISOString(),
    seconds: (performance.now() - t0) / 1000,
    command: `fusediff ${process.argv.slice(2).join(' ')}`,
    datasets: [{ dataset: rows[0].dataset, models: [], rows }],
  };
  writeReport(dir, report);
  printComparison(report);
  console.log(`\nreport: ${path.join(dir, 'report.md')}`);
  return 0;
};
