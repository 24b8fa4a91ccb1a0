// The experiment report: report.json (everything measured) and report.md (tables and pictures), and the
// comparison table printed at the end of a run.
import path from 'node:path';
import { writeFileAtomic } from '../storage/atomicWrite.ts';
import type { ExperimentReport, RowReport } from './run.ts';
import type { MetricName } from './seeds.ts';

const f = (x: number | undefined, d = 3) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
const pct = (x: number | undefined) => (x === undefined ? '-' : `${(100 * x).toFixed(1)}%`);

/** A metric of a row: with seeds, the mean and its 95% interval ('248.7 ± 3.1'). */
const cell = (r: RowReport, name: MetricName, format: (x: number | undefined) => string): string => {
  const iv = r.seeds?.interval[name];
  const value = (r.metrics as unknown as Record<string, number | undefined>)[name];
  if (!iv) return format(value);
  const half = format(iv.half).replace('%', '');
  return `${format(iv.mean)} ± ${half}`;
};
const f2 = (x: number | undefined) => f(x, 2);

/** One markdown table per data set kind: the metrics that kind has (means ± 95% intervals over seeds, where seeded). */
export const rowsTable = (rows: RowReport[], pictures = false): string => {
  if (rows.length === 0) return '';
  const pic = (r: RowReport) => (pictures ? ` | ![${r.name}](${r.picture})` : '');
  const head = pictures ? ' | samples' : '';
  if (rows[0].metrics.kind === 'points') {
    const real = rows[0].metrics;
    const lines = rows.map(
      (r) =>
        `| ${r.name} | ${r.cfgScale} | ${cell(r, 'logLikelihood', f)} | ${cell(r, 'offData', pct)} | ` +
        `${cell(r, 'modeCoverage', pct)}${pic(r)} |`,
    );
    const ref = `| *true samples* | - | ${f(real.logLikelihoodReal)} | ${pct(real.offDataReal)} | 100.0%${pictures ? ' | ' : ''} |`;
    return [
      `| row | CFG | mean log-likelihood (true samples: the reference) | off data (lower better) | mode coverage${head} |`,
      `|---|---|---|---|---${pictures ? '|---' : ''}|`,
      ...lines,
      ref,
    ].join('\n');
  }
  const real = rows[0].metrics;
  const lines = rows.map(
    (r) =>
      `| ${r.name} | ${r.cfgScale} | ${cell(r, 'fd', f2)} | ${cell(r, 'is', f2)} | ${cell(r, 'coverage', pct)} | ` +
      `${cell(r, 'accuracy', pct)}${pic(r)} |`,
  );
  const ref = `| *real digits* | - | ${f(real.fdReal, 2)} | - | - | -${pictures ? ' | ' : ''} |`;
  return [
    `| row | CFG | FD-MNIST (lower better) | IS (higher better) | class coverage | cond. accuracy${head} |`,
    `|---|---|---|---|---|---${pictures ? '|---' : ''}|`,
    ...lines,
    ref,
  ].join('\n');
};

/** The SP settings of a fine-tune, the paper's defaults left out. */
const spSettings = (o: ExperimentReport['datasets'][number]['models'][number]['config']['objective']): string =>
  [
    `layer ${o.layer}`,
    o.tPrime === 'offset' ? `t' = t + ${o.tPrimeOffset}` : `t' ${o.tPrime}`,
    o.distance,
    ...(o.renoise === 'predicted' ? [] : [`re-noise ${o.renoise}`]),
    ...(o.perceptual === 'frozen' ? [] : [`perceptual ${o.perceptual}`]),
  ].join(', ');

export const reportMarkdown = (r: ExperimentReport): string => {
  const parts = [
    `# fusediff experiment: ${r.name}`,
    '',
    `Backend: **${r.backend}** (${r.backendReason}). Total ${r.seconds.toFixed(0)} s, started ${r.startedAt}.`,
    r.command ? `\nCommand: \`${r.command}\`` : '',
    r.complete
      ? ''
      : `\n**Partial report**: ${r.missing.length} jobs are not done (${r.missing.join(', ')}); ` +
        'their rows are left out. `--resume` with the same spec and `--out` finishes them.',
  ];
  for (const d of r.datasets) {
    parts.push('', `## ${d.dataset}`);
    // `fusediff eval` trains nothing: no models table then (a header with no rows says nothing)
    if (d.models.length)
      parts.push('', '| model | source | steps | loss (first -> last) | seconds | objective |', '|---|---|---|---|---|---|');
    for (const m of d.models) {
      const o = m.config.objective;
      const obj = o.kind === 'sp' ? `sp (${spSettings(o)})` : 'mse';
      const name = `${m.name}${m.seed === undefined ? '' : ` (seed ${m.seed})`}`;
      parts.push(
        `| ${name} | ${m.source === 'committed' ? `committed \`${m.checkpoint}\`` : 'trained here'} ` +
          `| ${m.steps} | ${f(m.lossFirst, 4)} -> ${f(m.lossLast, 4)} | ${f(m.seconds, 1)} | ${obj} |`,
      );
    }
    parts.push('', rowsTable(d.rows, true));
    const figures = [
      ...(d.pictures?.loss ? [`![training loss of ${d.dataset}](${d.pictures.loss})`] : []),
      ...(d.pictures?.cfg ? [`![metrics of ${d.dataset} against the CFG scale](${d.pictures.cfg})`] : []),
    ];
    if (figures.length) parts.push('', figures.join(' '));
  }
  return `${parts.join('\n')}\n`;
};

export const writeReport = (dir: string, r: ExperimentReport): void => {
  const enc = (s: string) => new TextEncoder().encode(s);
  writeFileAtomic(
    path.join(dir, 'report.json'),
    enc(`${JSON.stringify(r, (k, v) => (k === 'samples' || k === 'classes' || k === 'losses' ? undefined : v), 2)}\n`),
  );
  writeFileAtomic(path.join(dir, 'report.md'), enc(reportMarkdown(r)));
};

/** The comparison table for the terminal. */
export const printComparison = (r: ExperimentReport): void => {
  for (const d of r.datasets) console.log(`\n${d.dataset} (${r.backend})\n${rowsTable(d.rows)}`);
};
