// `fusediff train-classifier`: trains the MNIST-16 evaluation classifier with the project's own DSL and compiler and
// saves it only when its held-out accuracy reaches --min-accuracy (the committed one: pretrained/README.md).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { saveCheckpoint } from '../storage/checkpoint.ts';
import type { BackendRequest } from '../compiler/index.ts';
import { classifier, evaluateClassifier, trainClassifier } from '../eval/classifier.ts';
import { progressBar } from '../runs/progress.ts';

export interface TrainClassifierFlags {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  backend: BackendRequest;
  out: string;
  minAccuracy: number;
  maxSteps?: number;
}

export const trainClassifierCommand = async (o: TrainClassifierFlags): Promise<number> => {
  const t0 = performance.now();
  let bar: ReturnType<typeof progressBar> | undefined;
  const result = await trainClassifier({
    epochs: o.epochs,
    batchSize: o.batchSize,
    lr: o.lr,
    seed: o.seed,
    backend: o.backend,
    maxSteps: o.maxSteps,
    onProgress: ({ step, stepsPerEpoch, loss, epoch }) => {
      bar ??= progressBar('classifier', Math.min(o.maxSteps ?? Infinity, o.epochs * stepsPerEpoch), 0, { epoch: '1', loss: '-' });
      bar.update(step, { epoch: String(epoch + 1), loss: loss.toFixed(4) });
    },
  });
  bar?.stop();
  const trainS = (performance.now() - t0) / 1000;
  result.epochLoss.forEach((l, i) =>
    console.log(`epoch ${i + 1}: mean train loss ${l.toFixed(4)}, ${(result.epochMs[i] / 1000).toFixed(1)}s`),
  );
  const accuracy = await evaluateClassifier(result.params, 'test', o.backend);
  console.log(`held-out accuracy ${(accuracy * 100).toFixed(2)}% (2000 test images); train ${trainS.toFixed(1)}s on ${result.backend}`);
  if (accuracy < o.minAccuracy) {
    console.log(`not saved: accuracy ${accuracy} < --min-accuracy ${o.minAccuracy}`);
    return 1;
  }
  mkdirSync(dirname(o.out), { recursive: true });
  saveCheckpoint(o.out, {
    params: result.params,
    state: {},
    ema: {},
    config: {
      model: { ...classifier.config },
      training: {
        epochs: o.epochs,
        batchSize: o.batchSize,
        lr: o.lr,
        seed: o.seed,
        optimizer: 'adam',
        loss: 'crossEntropy',
        data: 'mnist16 train (8000, split seed 0, testFraction 0.2)',
      },
      testAccuracy: accuracy,
      testImages: 2000,
      epochLoss: result.epochLoss,
      trainSeconds: Math.round(trainS),
      backend: result.backend,
      command: `fusediff ${process.argv.slice(2).join(' ')}`,
    },
    step: result.steps,
    rngCounter: 0,
    schedule: 'none',
    signature: classifier.signature,
  });
  console.log(`saved ${o.out}`);
  return 0;
};
