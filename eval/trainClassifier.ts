// Trains the MNIST-16 evaluation classifier and, when its held-out accuracy reaches --min-accuracy, saves it.
//   npx tsx eval/trainClassifier.ts --epochs 12 --seed 0
import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { saveCheckpoint } from '../checkpoint/checkpoint.ts';
import { shutdownBackends, type BackendRequest } from '../compiler/runtime/backends.ts';
import { classifier, evaluateClassifier, trainClassifier } from './classifier.ts';

const { values } = parseArgs({
  options: {
    epochs: { type: 'string', default: '12' },
    'batch-size': { type: 'string', default: '64' },
    lr: { type: 'string', default: '0.002' },
    seed: { type: 'string', default: '0' },
    backend: { type: 'string', default: 'webasm' },
    out: { type: 'string', default: 'checkpoints/classifier-mnist16.safetensors' },
    'min-accuracy': { type: 'string', default: '0.97' },
    'max-steps': { type: 'string' },
  },
});

const num = (name: string, v: string | undefined): number => {
  const x = Number(v);
  if (v === undefined || !Number.isFinite(x)) throw new Error(`--${name}: expected a number, got '${v}'`);
  return x;
};

const epochs = num('epochs', values.epochs), batchSize = num('batch-size', values['batch-size']), lr = num('lr', values.lr), seed = num('seed', values.seed);
const minAccuracy = num('min-accuracy', values['min-accuracy']);
const backend = values.backend as BackendRequest;
const maxSteps = values['max-steps'] === undefined ? undefined : num('max-steps', values['max-steps']);

const t0 = performance.now();
let lastEpoch = -1;
const result = await trainClassifier({
  epochs,
  batchSize,
  lr,
  seed,
  backend,
  maxSteps,
  onProgress: ({ epoch, step, stepsPerEpoch, loss, elapsedMs }) => {
    const within = step - epoch * stepsPerEpoch;
    if (within % 25 === 0 || within === stepsPerEpoch || epoch !== lastEpoch) {
      process.stdout.write(`\repoch ${epoch + 1}/${epochs} step ${within}/${stepsPerEpoch} loss ${loss.toFixed(4)} ${(elapsedMs / 1000).toFixed(1)}s   `);
      lastEpoch = epoch;
    }
  },
});
const trainS = (performance.now() - t0) / 1000;
process.stdout.write('\n');
result.epochLoss.forEach((l, i) => console.log(`epoch ${i + 1}: mean train loss ${l.toFixed(4)}, ${(result.epochMs[i] / 1000).toFixed(1)}s`));
const accuracy = await evaluateClassifier(result.params, 'test', backend);
const totalS = (performance.now() - t0) / 1000;
console.log(`held-out accuracy ${(accuracy * 100).toFixed(2)}% (2000 test images); train ${trainS.toFixed(1)}s, total ${totalS.toFixed(1)}s on ${result.backend}`);

if (accuracy >= minAccuracy) {
  mkdirSync(dirname(values.out!), { recursive: true });
  saveCheckpoint(values.out!, {
    params: result.params,
    state: {},
    ema: {},
    config: {
      model: { ...classifier.config },
      training: { epochs, batchSize, lr, seed, optimizer: 'adam', loss: 'crossEntropy', data: 'mnist16 train (8000, split seed 0, testFraction 0.2)' },
      testAccuracy: accuracy,
      testImages: 2000,
      epochLoss: result.epochLoss,
      trainSeconds: Math.round(trainS),
      backend: result.backend,
      command: `npx tsx eval/trainClassifier.ts ${process.argv.slice(2).join(' ')}`.trim(),
    },
    step: result.steps,
    rngCounter: 0,
    schedule: 'none',
    signature: classifier.signature,
  });
  console.log(`saved ${values.out}`);
} else {
  console.log(`not saved: accuracy ${accuracy} < ${minAccuracy}`);
  process.exitCode = 1;
}
await shutdownBackends();
