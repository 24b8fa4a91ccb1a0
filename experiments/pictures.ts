// The picture of a row's samples: a digit grid (one column per class for conditional MNIST) or a 2-D scatter over
// true samples of the mixture.
import type { NDArray } from '../core/ndarray.ts';
import { imageGrid, scatterPlot, writePng } from '../storage/png.ts';
import type { RunSetup } from '../runs/setup.ts';

export const samplePicture = (s: RunSetup, samples: NDArray, file: string): void => {
  if (s.dataset.kind === 'points') {
    const m = s.dataset.mixture;
    const [x0, x1, y0, y1] = m.bounds;
    writePng(file, scatterPlot(samples, { reference: m.sample(2000, 4242), range: [x0, x1, y0, y1] }));
    return;
  }
  const n = Math.min(100, samples.shape[0]);
  const per = samples.data.length / samples.shape[0];
  writePng(file, imageGrid({ shape: [n, ...samples.shape.slice(1)], data: samples.data.slice(0, n * per) }, { cols: 10, scale: 2 }));
};
