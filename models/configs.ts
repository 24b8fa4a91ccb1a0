// The models' configurations as plain data: what each kind of denoiser takes and its defaults. The contract
// (denoiser.ts), the implementations and the run configs all read these; this file imports nothing.

/** The MLP denoiser's configuration (for 2-D points and flattened images): sizes of its layers and embeddings. */
export interface MlpConfig {
  readonly kind: 'mlp';
  /** dimension of a data point (x is [B, dim]) */
  readonly dim: number;
  /** width of every hidden layer */
  readonly hidden: number;
  /** number of hidden layers (linear + SiLU) */
  readonly depth: number;
  /** width of the sinusoidal time embedding */
  readonly timeDim: number;
  /** width of the class embedding (conditional models only) */
  readonly classDim: number;
  readonly numClasses?: number;
}

/** What `createDenoiser` takes for an MLP: `kind: 'mlp'` and any fields of MlpConfig (the rest from `mlpDefaults`). */
export type MlpOptions = { kind: 'mlp' } & Partial<Omit<MlpConfig, 'kind'>>;

/** The defaults are the reference workload of the benchmark: 66 -> 256 -> 256 -> 256 -> 2. */
export const mlpDefaults: Omit<MlpConfig, 'kind'> = { dim: 2, hidden: 256, depth: 3, timeDim: 64, classDim: 16 };

/** The UNet denoiser's configuration (for 1xHxW images): channels per level, residual blocks, groups, attention. */
export interface UnetConfig {
  readonly kind: 'unet';
  /** image channels (1 for MNIST) */
  readonly channels: number;
  /** square images: imageSize x imageSize, divisible by 2^(levels - 1) */
  readonly imageSize: number;
  readonly baseChannels: number;
  /** one entry per resolution level: channels = baseChannels * mult */
  readonly channelMults: readonly number[];
  /** res blocks per level, on the way down and on the way up */
  readonly numResBlocks: number;
  /** GroupNorm groups; must divide every channel count */
  readonly groups: number;
  /** width of the time (+ class) embedding */
  readonly embDim: number;
  /** the middle block is res, self-attention, res (DDPM, Stable Diffusion) rather than two res blocks */
  readonly midAttention: boolean;
  readonly numClasses?: number;
}

/** What `createDenoiser` takes for a UNet: `kind: 'unet'` and any fields of UnetConfig (the rest from `unetDefaults`). */
export type UnetOptions = { kind: 'unet' } & Partial<Omit<UnetConfig, 'kind'>>;

/** MNIST-sized defaults: 28 -> 14 -> 7 with 16, 32, 32 channels. */
export const unetDefaults: Omit<UnetConfig, 'kind'> = {
  channels: 1,
  imageSize: 28,
  baseChannels: 16,
  channelMults: [1, 2, 2],
  numResBlocks: 1,
  groups: 4,
  embDim: 64,
  midAttention: true,
};

/**
 * A fully resolved model configuration. `numClasses` makes the model conditional on class ids 0..numClasses-1;
 * the id `numClasses` itself is the null class (the unconditional branch of classifier-free guidance).
 */
export type DenoiserConfig = MlpConfig | UnetConfig;

/** What createDenoiser takes: a kind and any sizes to override (the rest take their defaults). */
export type DenoiserOptions = MlpOptions | UnetOptions;
