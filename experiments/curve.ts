// Metrics against training steps: every given checkpoint of one run (stage-1 chunks, or a fine-tune's kept
// checkpoints) sampled and evaluated alike, so that "trained until FD stops improving" and "whether and when SP
// helps" are curves, not claims.
import path from 'node:path';
import { writeFigure } from '../plots/render.ts';
import { cfgFigure } from '../plots/specs.ts';
import type { Json } from '../runs/config.ts';
import { writeFileAtomic } from '../storage/atomicWrite.ts';
import type { Metrics } from './evaluate.ts';
import { metricPanels } from './pictures.ts';
import { loadModel, sampleRow } from './run.ts';

export interface CurvePoint {
  readonly checkpoint: string;
  readonly step: number;
  readonly cfg: number;
  readonly metrics: Metrics;
  readonly sampleSeconds: number;
}

/**
 * Samples and evaluates each checkpoint at each scale (same sampling seed and count for all: one curve). Given
 * fine-tunes with the stage-1 checkpoint they start from, the stage-1 one is the curve's step 0.
 */
export const checkpointCurve = async (
  files: readonly string[],
  scales: readonly number[],
  overrides: Record<string, Json>,
  quiet = true,
): Promise<CurvePoint[]> => {
  const loaded = files.map((file) => ({ file, ck: loadModel(file) }));
  const fineTunes = loaded.some((m) => m.ck.config.init);
  const models = loaded.map((m) => ({ ...m, step: fineTunes && !m.ck.config.init ? 0 : m.ck.step })).sort((a, b) => a.step - b.step);
  const datasets = new Set(models.map((m) => m.ck.config.run.data.name));
  if (datasets.size > 1)
    throw new Error(`curve: the checkpoints are of different data sets (${[...datasets].join(', ')}): one run's, please`);
  const points: CurvePoint[] = [];
  for (const { file, ck, step } of models)
    for (const cfg of scales) {
      const row = { name: `step ${step}`, model: path.basename(file), cfg };
      const r = await sampleRow(ck, row, overrides, '', quiet, undefined, false);
      points.push({ checkpoint: file, step, cfg, metrics: r.metrics, sampleSeconds: r.sampleSeconds });
    }
  return points;
};

const f = (x: number | undefined, d = 2) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));

export const curveMarkdown = (points: readonly CurvePoint[]): string => {
  const image = points[0]?.metrics.kind === 'image';
  const head = image
    ? '| step | CFG | FD-MNIST | real digits | IS | class coverage | cond. accuracy |'
    : '| step | CFG | mean log-likelihood | off data | mode coverage |';
  const lines = points.map((p) => {
    const m = p.metrics;
    const pct = (x: number | undefined) => (x === undefined ? '-' : `${f(100 * x, 1)}%`);
    return m.kind === 'image'
      ? `| ${p.step} | ${p.cfg} | ${f(m.fd)} | ${f(m.fdReal)} | ${f(m.is)} | ${pct(m.coverage)} | ${pct(m.accuracy)} |`
      : `| ${p.step} | ${p.cfg} | ${f(m.logLikelihood, 3)} | ${pct(m.offData)} | ${pct(m.modeCoverage)} |`;
  });
  return [head, head.replace(/[^|]+/g, '---'), ...lines].join('\n');
};

/** Writes curve.json, curve.md and curve.png (each metric against the step, one line per CFG scale) into `dir`. */
export const writeCurve = async (dir: string, title: string, points: readonly CurvePoint[], command: string): Promise<string[]> => {
  const enc = (s: string) => new TextEncoder().encode(s);
  writeFileAtomic(path.join(dir, 'curve.json'), enc(`${JSON.stringify({ command, points }, null, 2)}\n`));
  writeFileAtomic(path.join(dir, 'curve.md'), enc(`# ${title}\n\nCommand: \`${command}\`\n\n${curveMarkdown(points)}\n`));
  const panels = metricPanels(points.map((p) => ({ series: p.cfg === 1 ? 'no CFG' : `CFG ${p.cfg}`, cfg: p.step, metrics: p.metrics })));
  const steps = [...new Set(points.map((p) => p.step))];
  const subtitle = [
    `${steps.length} checkpoints (steps ${steps[0]} to ${steps[steps.length - 1]}), each sampled alike; the command is in curve.md`,
  ];
  const axes = { x: 'training step', format: 'd', legend: 'guidance' };
  await writeFigure(path.join(dir, 'curve.png'), cfgFigure({ title, subtitle, panels, axes }));
  return ['curve.json', 'curve.md', 'curve.png'].map((n) => path.join(dir, n));
};
