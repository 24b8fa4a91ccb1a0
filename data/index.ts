// The data sets by name: MNIST at 16x16 or 28x28 (images) and the 2-D mixtures with known densities.
import { loadMnist, type MnistOptions, type MnistSize, type MnistSplit } from './mnist.ts';
import { checkerboard, eightGaussians, grid25, twoMoons, type Mixture2D } from './mixtures.ts';

export interface ImageDataset {
  readonly kind: 'image';
  readonly name: string;
  readonly description: string;
  readonly size: MnistSize;
  readonly channels: 1;
  readonly classes: 10;
  /** One split, images [N,1,size,size] in [-1, 1]; decoded data is cached per process. */
  load(opts: Omit<MnistOptions, 'size'>): MnistSplit;
}

export interface PointDataset {
  readonly kind: 'points';
  readonly name: string;
  readonly description: string;
  readonly mixture: Mixture2D;
}

export type Dataset = ImageDataset | PointDataset;

const mnist = (size: MnistSize): ImageDataset => ({
  kind: 'image',
  name: `mnist${size}`,
  description: size === 28 ? 'MNIST digits, 28x28' : 'MNIST digits, area-averaged from 28x28 to 16x16',
  size,
  channels: 1,
  classes: 10,
  load: (opts) => loadMnist({ ...opts, size }),
});

const points = (mixture: Mixture2D): PointDataset => ({ kind: 'points', name: mixture.name, description: mixture.description, mixture });

export const datasets = {
  mnist16: mnist(16),
  mnist28: mnist(28),
  eightGaussians: points(eightGaussians),
  grid25: points(grid25),
  checkerboard: points(checkerboard),
  twoMoons: points(twoMoons),
} as const satisfies Record<string, Dataset>;

export type DatasetName = keyof typeof datasets;
export const datasetNames = Object.keys(datasets) as DatasetName[];

export const isDatasetName = (name: string): name is DatasetName => Object.prototype.hasOwnProperty.call(datasets, name);

/** The data set of that name; an unknown name gets the list of valid ones. */
export const getDataset = (name: string): Dataset => {
  if (!isDatasetName(name)) throw new Error(`unknown dataset '${name}'; datasets: ${datasetNames.join(', ')}`);
  return datasets[name];
};

export * from './mnist.ts';
export * from './mixtures.ts';
