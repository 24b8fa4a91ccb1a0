// A small DDPM-style UNet for C x H x W images. Level i runs at H / 2^i with baseChannels * channelMults[i] channels:
//   convIn -> down0 .. down{L-1} (avgPool 2 before each level but the first) -> mid (res block, self-attention,
//   res block at the lowest resolution, as DDPM and Stable Diffusion; two res blocks with midAttention: false)
//   -> up0 .. up{L-1} (upsample 2 before each but the first, then concat the matching down output)
//   -> out (groupNorm, SiLU, zero-initialised conv).
// Each named layer's output is the last res block of that stage; 'mid' is the bottleneck the self-perceptual loss reads.
import { avgPool2d, silu, upsampleNearest2d } from '../dsl/composites.ts';
import * as nn from '../dsl/nn.ts';
import * as op from '../dsl/ops.ts';
import { seedFor, type ParamTensors } from '../dsl/params.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { attentionBlock, conditioning, resBlock, type AttentionParams, type CondParams, type ResBlockParams } from './blocks.ts';
import { unetDefaults, type UnetConfig, type UnetOptions } from './configs.ts';
import { DenoiserError, makeDenoiser, type Denoiser } from './denoiser.ts';

type Stage = { [name: string]: ResBlockParams };

/** The parameter tree of the UNet denoiser: conditioning, input conv, down path, middle block, up path, output. */
export type UnetParams = {
  cond: CondParams;
  convIn: nn.Conv2dParams;
  /** down.down0.res0, ... */
  down: { [name: string]: Stage };
  /** mid.res0, mid.attn (with midAttention), mid.res1 */
  mid: { res0: ResBlockParams; attn?: AttentionParams; res1: ResBlockParams };
  up: { [name: string]: Stage };
  normOut: nn.NormParams;
  convOut: nn.Conv2dParams;
};

const positiveInt = (v: number) => Number.isInteger(v) && v > 0;

const resolve = (options: UnetOptions): UnetConfig => {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const cfg: UnetConfig = {
    ...unetDefaults,
    ...given,
    channelMults: [...(options.channelMults ?? unetDefaults.channelMults)],
    kind: 'unet',
  };
  const bad = (msg: string): never => {
    throw new DenoiserError(`unet: ${msg}`);
  };
  for (const k of ['channels', 'imageSize', 'baseChannels', 'numResBlocks', 'groups', 'embDim'] as const)
    if (!positiveInt(cfg[k])) bad(`${k} must be a positive integer, got ${cfg[k]}`);
  if (cfg.channelMults.length === 0 || !cfg.channelMults.every(positiveInt))
    bad(`channelMults must be positive integers, got [${cfg.channelMults.join(',')}]`);
  const scale = 2 ** (cfg.channelMults.length - 1);
  if (cfg.imageSize % scale !== 0)
    bad(`imageSize ${cfg.imageSize} does not halve ${cfg.channelMults.length - 1} times (needs a multiple of ${scale})`);
  for (const ch of [cfg.baseChannels, ...cfg.channelMults.map((m) => m * cfg.baseChannels)])
    if (ch % cfg.groups !== 0) bad(`${ch} channels do not split into ${cfg.groups} groups (groups must divide baseChannels * every mult)`);
  if (cfg.numClasses !== undefined && !positiveInt(cfg.numClasses)) bad(`numClasses must be a positive integer, got ${cfg.numClasses}`);
  return cfg;
};

const resNames = (n: number) => Array.from({ length: n }, (_, r) => `res${r}`);

export const createUnet = (options: UnetOptions): Denoiser<UnetParams> => {
  const config = resolve(options);
  const { channels, imageSize, baseChannels, channelMults, numResBlocks, groups, embDim, midAttention, numClasses } = config;
  const L = channelMults.length;
  const ch = channelMults.map((m) => m * baseChannels);
  const downNames = ch.map((_, i) => `down${i}`);
  const upNames = ch.map((_, j) => `up${j}`);
  const blocks = resNames(numResBlocks);

  const init = (seed: number): UnetParams => {
    const s = (path: string) => seedFor(seed, path);
    const down: UnetParams['down'] = {};
    let cur = baseChannels;
    downNames.forEach((name, i) => {
      down[name] = Object.fromEntries(
        blocks.map((b, r) => [b, resBlock.init(s(`down.${name}.${b}`), r === 0 ? cur : ch[i], ch[i], embDim)]),
      );
      cur = ch[i];
    });
    const mid: UnetParams['mid'] = {
      res0: resBlock.init(s('mid.res0'), cur, cur, embDim),
      ...(midAttention ? { attn: attentionBlock.init(s('mid.attn'), cur) } : {}),
      res1: resBlock.init(s('mid.res1'), cur, cur, embDim),
    };
    const up: UnetParams['up'] = {};
    upNames.forEach((name, j) => {
      const i = L - 1 - j;
      up[name] = Object.fromEntries(
        blocks.map((b, r) => [b, resBlock.init(s(`up.${name}.${b}`), r === 0 ? cur + ch[i] : ch[i], ch[i], embDim)]),
      );
      cur = ch[i];
    });
    return {
      cond: conditioning.init(s('cond'), baseChannels, embDim, numClasses),
      convIn: nn.conv2d.init(s('convIn'), channels, baseChannels, 3),
      down,
      mid,
      up,
      normOut: nn.groupNorm.init(s('normOut'), cur),
      convOut: nn.conv2d.init(s('convOut'), cur, channels, 3, { gain: 0 }),
    };
  };

  function* forward(p: ParamTensors<UnetParams>, x: Tensor, t: Tensor, c: Tensor | undefined): Generator<readonly [string, Tensor]> {
    const embAct = silu(conditioning.apply(p.cond, t, c));
    const stage = (params: ParamTensors<Stage>, h: Tensor) => blocks.reduce((acc, b) => resBlock.apply(params[b], acc, embAct, groups), h);
    let h = nn.conv2d.apply(p.convIn, x, { padding: 1 });
    const skips: Tensor[] = [];
    for (let i = 0; i < L; i++) {
      h = stage(p.down[downNames[i]], i === 0 ? h : avgPool2d(h, 2));
      skips.push(h);
      yield [downNames[i], h];
    }
    h = resBlock.apply(p.mid.res0, h, embAct, groups);
    if (p.mid.attn) h = attentionBlock.apply(p.mid.attn, h, groups);
    h = resBlock.apply(p.mid.res1, h, embAct, groups);
    yield ['mid', h];
    for (let j = 0; j < L; j++) {
      const up = j === 0 ? h : upsampleNearest2d(h, 2);
      h = stage(p.up[upNames[j]], op.concat([up, skips[L - 1 - j]], 1));
      yield [upNames[j], h];
    }
    yield ['out', nn.conv2d.apply(p.convOut, silu(nn.groupNorm.apply(p.normOut, h, groups)), { padding: 1 })];
  }

  return makeDenoiser({
    config,
    dataShape: [channels, imageSize, imageSize],
    layers: [...downNames, 'mid', ...upNames, 'out'],
    init,
    forward,
  });
};
