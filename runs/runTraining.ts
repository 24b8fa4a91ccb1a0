// A training run in a folder: the checkpoint, config.json and losses.json, a progress bar and Ctrl-C handling.
// The CLI's train/finetune commands and the experiments both run training through it.
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../storage/checkpoint.ts';
import type { RunConfig } from './config.ts';
import { train, type TrainResult } from './trainer.ts';
import { progressBar } from './progress.ts';

export const runDir = (out: string | undefined, fallback: string): string => path.resolve(out ?? path.join('out', fallback));

const json = (v: unknown) => new TextEncoder().encode(`${JSON.stringify(v, null, 2)}\n`);

/** Trains under a progress bar; the first Ctrl-C stops after the step in flight and saves, a second one exits at once. */
export const runTraining = async (
  config: RunConfig,
  dir: string,
  opts: { resume?: boolean; from?: string; quiet?: boolean; label?: string },
): Promise<TrainResult> => {
  fs.mkdirSync(dir, { recursive: true });
  const checkpoint = path.join(dir, 'checkpoint.safetensors');
  const stopper = { stop: false };
  const onSigint = () => {
    if (stopper.stop) process.exit(130);
    stopper.stop = true;
    process.stderr.write('\nCtrl-C: saving at the end of this step (press again to quit without saving)\n');
  };
  process.on('SIGINT', onSigint);
  let bar: ReturnType<typeof progressBar> | undefined;
  try {
    const r = await train({
      config,
      checkpoint,
      resume: opts.resume,
      from: opts.from,
      stopper,
      onStep: ({ step, loss, total, startStep }) => {
        if (opts.quiet) return;
        bar ??= progressBar(opts.label ?? config.objective.kind, total, startStep, { loss: '-' });
        bar.update(step, { loss: loss.toFixed(4) });
      },
    });
    bar?.stop();
    writeFileAtomic(path.join(dir, 'config.json'), json(config));
    const log = path.join(dir, 'losses.json');
    const previous =
      opts.resume && fs.existsSync(log)
        ? (JSON.parse(fs.readFileSync(log, 'utf8')) as { losses: number[] }).losses.slice(0, r.startStep)
        : [];
    writeFileAtomic(log, json({ losses: [...previous, ...r.losses], backend: r.backend, seconds: r.seconds }));
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);
    const msg = r.interrupted
      ? `interrupted: saved step ${r.step} to ${checkpoint}`
      : `trained steps ${r.startStep + 1}..${r.step} in ${r.seconds.toFixed(1)} s on ${r.backend}`;
    if (!opts.quiet)
      console.error(`${msg}; mean loss of the last 50 steps ${mean(r.losses.slice(-50)).toPrecision(4)}; checkpoint ${checkpoint}`);
    return r;
  } finally {
    bar?.stop();
    process.off('SIGINT', onSigint);
  }
};
