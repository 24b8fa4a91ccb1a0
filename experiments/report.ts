// The experiment report: report.json (everything measured) and report.md (tables and pictures), and the
// comparison table printed at the end of a run.
import path from 'node:path';
import { writeFileAtomic } from '../storage/atomicWrite.ts';
import type { ExperimentReport, RowReport } from './run.ts';
import { backendLine } from './backendLine.ts';
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
    const ref =
      `| *true samples (${rows[0].count})* | - | ${f(real.logLikelihoodReal)} | ${pct(real.offDataReal)} | 100.0%` +
      `${pictures ? ' | ' : ''} |`;
    return [
      `| row | CFG | mean log-likelihood (higher: nearer the modes; above the true samples: over-concentrated) | ` +
        `off data (lower better) | mode coverage (higher better)${head} |`,
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
  const ref = `| *real digits (${rows[0].count})* | - | ${f(real.fdReal, 2)} | - | - | -${pictures ? ' | ' : ''} |`;
  return [
    `| row | CFG | FD-MNIST (lower better; real digits: the floor, an estimate) | IS (higher better) | ` +
      `class coverage (higher better) | cond. accuracy (higher better)${head} |`,
    `|---|---|---|---|---|---${pictures ? '|---' : ''}|`,
    ...lines,
    ref,
  ].join('\n');
};

/** The value of a row's metric: with seeds, the mean over them. */
const valueOf = (r: RowReport, name: MetricName): number | undefined =>
  r.seeds?.interval[name]?.mean ?? (r.metrics as unknown as Record<string, number | undefined>)[name];

/** Rows by name, with the CFG scale where the name does not give it. */
const names = (rows: RowReport[]) => rows.map((r) => (/CFG/.test(r.name) ? r.name : `${r.name} (CFG ${r.cfgScale})`)).join(', ');

/**
 * How to read a rows table: each metric's direction, what the reference row is, and, where rows pass the reference,
 * why that is not "better than the data" (the reader should not need to know the answer).
 */
export const howToRead = (rows: RowReport[]): string => {
  if (rows.length === 0) return '';
  const n = rows[0].count;
  if (rows[0].metrics.kind === 'points') {
    const real = rows[0].metrics.logLikelihoodReal;
    const above = rows.filter((r) => (valueOf(r, 'logLikelihood') ?? -Infinity) > real);
    return [
      'How to read: the mean log-likelihood is the mean log-density of the samples under the true mixture; higher means ' +
        'samples nearer the modes, but it is not a score to maximise: the true samples (' +
        `${n} drawn from the mixture itself, the reference row) score ${f(real)}, and a model matches the data when it ` +
        'scores about the same. Off data (the share of samples more than 3 std from every component) is better lower, ' +
        'mode coverage (the share of modes that receive at least a quarter of their fair share) better higher.',
      above.length
        ? `Above the true samples: ${names(above)}. Their samples crowd the modes' centres more tightly than the data ` +
          'do (over-concentration: too little spread, which strong CFG in particular causes), so their higher ' +
          'log-likelihood is a departure from the data, not an improvement on it.'
        : '',
    ]
      .filter(Boolean)
      .join(' ');
  }
  const floor = rows[0].metrics.fdReal;
  const below = rows.filter((r) => (valueOf(r, 'fd') ?? Infinity) < floor);
  return [
    "How to read: FD-MNIST is the Fréchet distance between the evaluation classifier's features of the samples and of " +
      `the held-out test digits; lower is better. The real-digits row scores ${n} real training digits alike: the floor ` +
      'a perfect model would reach with as many samples. It is a finite-sample estimate, one draw of a band (other ' +
      `draws of ${n} real digits score higher or lower), not an exact line. IS, class coverage and the conditional ` +
      'accuracy (the share of samples the classifier reads as the digit asked for) are better higher.',
    below.length
      ? `Below the real digits' ${f(floor, 2)}: ${names(below)}. Read that as reaching the floor (within the spread ` +
        'of its estimate at this sample count), not as samples closer to the test digits than real digits are.'
      : '',
  ]
    .filter(Boolean)
    .join(' ');
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
    `${backendLine(r)} Total ${r.seconds.toFixed(0)} s, started ${r.startedAt}.`,
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
    parts.push('', rowsTable(d.rows, true), '', howToRead(d.rows));
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
  for (const d of r.datasets) console.log(`\n${d.dataset} (${r.backend})\n${rowsTable(d.rows)}\n${howToRead(d.rows)}`);
};
