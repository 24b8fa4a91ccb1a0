// `fusediff experiment [spec]`: the whole pipeline (npm start runs it with the embedded default). Each job writes its
// result as it finishes, so Ctrl-C (exit 130) loses nothing finished, --resume continues, --shard i/n runs a slice and
// --merge gathers the slices' folders into one report.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultSpec, decodeSpec } from '../experiments/spec.ts';
import { runExperiment, type Stopper } from '../experiments/run.ts';
import { printComparison, writeReport } from '../experiments/report.ts';
import { readJsonFile } from './options.ts';
import { ConfigError } from '../runs/config.ts';

export interface ExperimentFlags {
  out?: string;
  trainStage1: boolean;
  quiet: boolean;
  backend?: string;
  resume: boolean;
  force: boolean;
  /** `i/n`, parsed by the command line */
  shard?: { index: number; count: number };
  stage1Only: boolean;
  merge?: string[];
}

/** The first Ctrl-C stops after the training step or sampling batch in flight (what finished is kept); a second exits. */
const onCtrlC = (stopper: Stopper) => () => {
  if (stopper.stop) process.exit(130);
  stopper.stop = true;
  process.stderr.write('\nCtrl-C: the experiment stops after the step or batch in flight (press again to quit at once)\n');
};

/** The committed specs (a checkout's experiments/specs/; an installed package has none). */
const specsDir = fileURLToPath(new URL('../experiments/specs/', import.meta.url));

/**
 * The spec file to read: the path as given, else a committed spec by its name (`mnist16` or `mnist16.json`); a name
 * that is neither is refused with the list of the committed specs.
 */
export const specPath = (file: string): string => {
  if (fs.existsSync(file)) return file;
  const named = path.join(specsDir, file.endsWith('.json') ? file : `${file}.json`);
  if (!/[\\/]/.test(file) && fs.existsSync(named)) return named;
  const specs = fs.existsSync(specsDir) ? fs.readdirSync(specsDir).filter((n) => n.endsWith('.json')) : [];
  const where = path.relative(process.cwd(), specsDir) || '.';
  throw new ConfigError(
    `no spec file ${file}` +
      (specs.length
        ? `; the committed specs (${where}${path.sep}): ${specs.map((n) => n.slice(0, -'.json'.length)).join(', ')} ` +
          `(a name or a path, e.g. fusediff experiment ${specs[0].slice(0, -'.json'.length)})`
        : ''),
  );
};

export const experimentCommand = async (specFile: string | undefined, f: ExperimentFlags): Promise<number> => {
  const file = specFile === undefined ? undefined : specPath(specFile);
  const spec = file ? decodeSpec(readJsonFile(file), file) : structuredClone(defaultSpec);
  if (f.backend) spec.backend = f.backend;
  const dir = path.resolve(f.out ?? path.join('out', spec.name));
  const command = `fusediff experiment ${process.argv.slice(3).join(' ')}`.trim();
  const stopper: Stopper = { stop: false };
  const handler = onCtrlC(stopper);
  process.on('SIGINT', handler);
  try {
    const o = await runExperiment(spec, dir, {
      trainStage1: f.trainStage1,
      quiet: f.quiet,
      command,
      resume: f.resume,
      force: f.force,
      shard: f.shard,
      stage1Only: f.stage1Only,
      merge: f.merge?.map((m) => path.resolve(m)),
      stopper,
    });
    const left = `${o.missing.length} job${o.missing.length === 1 ? '' : 's'} of the experiment not done`;
    if (!o.report) {
      const what = f.shard ? `shard ${f.shard.index + 1}/${f.shard.count}` : 'stage 1';
      console.log(`${what}: ran ${o.ran.length} jobs in ${dir}; ${left}`);
      if (f.shard && !o.interrupted)
        console.log(`when every shard is done: fusediff experiment ${specFile ?? ''} --out <folder> --merge <the shards' folders>`);
      return o.interrupted ? 130 : 0;
    }
    writeReport(dir, o.report);
    printComparison(o.report);
    if (o.report.complete)
      console.log(`\nreport: ${path.join(dir, 'report.md')} (and report.json), ${o.report.seconds.toFixed(0)} s on ${o.report.backend}`);
    else
      console.log(
        `\npartial report: ${path.join(dir, 'report.md')}; ${left}: ${o.missing.join(', ')}\n` +
          `continue with: fusediff experiment ${specFile ?? ''} --out ${dir} --resume`.replace('  ', ' '),
      );
    return o.interrupted ? 130 : o.report.complete ? 0 : 1;
  } finally {
    process.off('SIGINT', handler);
  }
};
