// `fusediff experiment [spec.json]`: the whole pipeline (npm start runs it with the embedded default).
import path from 'node:path';
import { defaultSpec, decodeSpec } from '../experiments/spec.ts';
import { runExperiment } from '../experiments/run.ts';
import { printComparison, writeReport } from '../experiments/report.ts';
import { readJsonFile } from './options.ts';

export interface ExperimentFlags {
  out?: string;
  trainStage1: boolean;
  quiet: boolean;
  backend?: string;
}

export const experimentCommand = async (specFile: string | undefined, f: ExperimentFlags): Promise<number> => {
  const spec = specFile ? decodeSpec(readJsonFile(specFile), specFile) : defaultSpec;
  if (f.backend) spec.backend = f.backend;
  const dir = path.resolve(f.out ?? path.join('out', spec.name));
  const command = `fusediff experiment ${process.argv.slice(3).join(' ')}`.trim();
  const report = await runExperiment(spec, dir, { trainStage1: f.trainStage1, quiet: f.quiet, command });
  writeReport(dir, report);
  printComparison(report);
  console.log(`\nreport: ${path.join(dir, 'report.md')} (and report.json), ${report.seconds.toFixed(0)} s on ${report.backend}`);
  return 0;
};
