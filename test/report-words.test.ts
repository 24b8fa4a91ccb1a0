// Reports a reader can read without knowing the answer (issue 25): every metric says its direction, the reference
// rows say what they are, a row that passes the reference is explained, legends do not repeat the objective, and
// the loss plot's smoothing invents no trend.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { howToRead, reportMarkdown, rowsTable } from '../experiments/report.ts';
import { describeModel, type ExperimentReport, type RowReport } from '../experiments/run.ts';
import { smoothLog } from '../plots/specs.ts';

const row = (name: string, cfgScale: number, metrics: Record<string, unknown>): RowReport =>
  ({ dataset: 'd', name, model: name, cfgScale, metrics, picture: `${name}.png`, count: 500, conditional: true }) as unknown as RowReport;

const points = (name: string, cfg: number, logLikelihood: number) =>
  row(name, cfg, { kind: 'points', logLikelihood, logLikelihoodReal: -0.275, offData: 0.01, offDataReal: 0.006, modeCoverage: 1 });
const digits = (name: string, cfg: number, fd: number) =>
  row(name, cfg, { kind: 'image', fd, fdReal: 6.78, is: 9, coverage: 1, classShares: [], accuracy: 0.9 });

test('the 2-D table says which way each metric is better, and a row above the true samples is called over-concentrated', () => {
  const rows = [points('MSE', 1, -0.4), points('MSE+CFG 3', 3, 0.624)];
  const table = rowsTable(rows);
  const header = table.split('\n')[0];
  assert.match(header, /mean log-likelihood \(higher: nearer the modes; above the true samples: over-concentrated\)/);
  assert.match(header, /off data \(lower better\)/);
  assert.match(header, /mode coverage \(higher better\)/);
  assert.match(table, /\| \*true samples \(500\)\* \| - \| -0\.275 \|/);
  const note = howToRead(rows);
  assert.match(note, /a model matches the data when it scores about the same/);
  assert.match(note, /Above the true samples: MSE\+CFG 3\. .*over-concentration/);
  assert.doesNotMatch(note, /Above the true samples: MSE \(CFG 1\)/);
  assert.doesNotMatch(howToRead([points('MSE', 1, -0.4)]), /Above the true samples/);
});

test('the MNIST table calls the real digits a floor that is an estimate, and a row below it is read as reaching it', () => {
  const rows = [digits('MSE', 1, 8.1), digits('SP', 1, 4.78)];
  const header = rowsTable(rows).split('\n')[0];
  assert.match(header, /FD-MNIST \(lower better; real digits: the floor, an estimate\)/);
  for (const m of ['IS', 'class coverage', 'cond. accuracy']) assert.ok(header.includes(`${m} (higher better)`), header);
  assert.match(rowsTable(rows), /\| \*real digits \(500\)\* \| - \| 6\.78 \|/);
  const note = howToRead(rows);
  assert.match(note, /finite-sample estimate, one draw of a band/);
  assert.match(note, /Below the real digits' 6\.78: SP \(CFG 1\)\. Read that as reaching the floor/);
  assert.doesNotMatch(note, /MSE \(CFG 1\)/);
});

test('report.md carries the how-to-read note under each table', () => {
  const report = {
    name: 'x',
    backend: 'wasm',
    backendReason: 'requested',
    seconds: 1,
    startedAt: 'now',
    complete: true,
    missing: [],
    datasets: [{ dataset: 'eightGaussians', models: [], rows: [points('MSE', 1, -0.3)] }],
  } as unknown as ExperimentReport;
  assert.match(reportMarkdown(report), /\| \*true samples \(500\)\* .*\n\nHow to read: the mean log-likelihood/);
});

test("legends name a model's objective once: 'SP', not 'SP (SP)'", () => {
  const m = (name: string, kind: string) => describeModel({ name, config: { objective: { kind } } });
  assert.equal(m('SP', 'sp'), 'SP');
  assert.equal(m('MSE', 'mse'), 'MSE');
  assert.equal(m('SP layer all', 'sp'), 'SP layer all');
  assert.equal(m('stage1', 'mse'), 'stage1 (MSE)');
  assert.equal(m('tuned', 'sp'), 'tuned (SP)');
});

test('the loss curve smoothing invents no trend: a flat noisy run whose first step is low stays flat', () => {
  // a stationary loss around 1 (deterministic noise), whose first step happens to be low
  const losses = Array.from({ length: 300 }, (_, i) => (i === 0 ? 0.2 : Math.exp(0.3 * Math.sin(i * 2.399))));
  const m = smoothLog(losses);
  const first50 = m.slice(0, 50);
  assert.ok(m[0] > 0.8, `the line starts at ${m[0]}, far below the run's level`);
  assert.ok(Math.max(...first50) / Math.min(...first50) < 1.15, `the line moves ${Math.max(...first50) / Math.min(...first50)}x`);
  // a falling loss stays falling (no rise at the start, no lag that flattens it)
  const falling = Array.from({ length: 200 }, (_, i) => Math.exp(-i / 50));
  const s = smoothLog(falling);
  for (let i = 1; i < s.length; i++) assert.ok(s[i] <= s[i - 1] + 1e-12, `rises at step ${i}`);
  // non-finite and non-positive losses have no value and do not poison their neighbours
  const gaps = smoothLog([1, NaN, 0, 1, 1]);
  assert.ok(Number.isNaN(gaps[1]) && Number.isNaN(gaps[2]));
  assert.ok(Math.abs(gaps[0] - 1) < 1e-12 && Math.abs(gaps[4] - 1) < 1e-12);
});
