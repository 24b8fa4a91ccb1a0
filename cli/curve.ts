// `fusediff curve`: metrics against training steps from a run's checkpoints (experiments/curve.ts).
import { resolveCheckpointRef } from '../storage/packageFiles.ts';
import fs from 'node:fs';
import path from 'node:path';
import { checkpointCurve, curveMarkdown, writeCurve } from '../experiments/curve.ts';
import { definedOverrides } from './options.ts';

export interface CurveFlags {
  cfg?: number[];
  count?: number;
  steps?: number;
  seed?: number;
  backend?: string;
  out: string;
  quiet: boolean;
}

export const curveCommand = async (files: string[], f: CurveFlags): Promise<number> => {
  for (const file of files) if (!fs.existsSync(resolveCheckpointRef(file))) throw new Error(`curve: no checkpoint ${file}`);
  const overrides = definedOverrides({
    'sample.count': f.count,
    'sample.steps': f.steps,
    'sample.seed': f.seed,
    backend: f.backend,
  });
  const points = await checkpointCurve(files, f.cfg ?? [1], overrides, f.quiet);
  const dir = path.resolve(f.out);
  fs.mkdirSync(dir, { recursive: true });
  const command = `fusediff curve ${process.argv.slice(3).join(' ')}`;
  const written = await writeCurve(
    dir,
    `metrics against training steps · ${path.basename(path.dirname(path.resolve(files[0])))}`,
    points,
    command,
  );
  console.log(`${curveMarkdown(points)}\n\n${written.join(', ')}`);
  return 0;
};
