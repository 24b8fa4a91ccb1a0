// The random primitive: an element's value depends only on (seed, stream, counter, element index), so noise
// is drawn where it is used, is the same on every backend, and a resumed run replays it by restoring the
// counter. The generator itself is specified in rng.ts.
import { ShapeError, fmt, size } from '../shape.ts';
import { maxRandomElements, normalAt, randomKey, uniformAt } from '../rng.ts';
import type { PrimitiveImpl } from './types.ts';

export const random: PrimitiveImpl<'random'> = {
  shape: ([counter], { dist, seed, stream }, declared) => {
    if (counter.length !== 0) throw new ShapeError('random', `the counter must be a scalar, got ${fmt(counter)}`);
    if (!Number.isInteger(seed) || !Number.isInteger(stream))
      throw new ShapeError('random', `seed and stream must be integers, got ${seed}, ${stream}`);
    if (!declared) throw new ShapeError('random', 'needs an output shape');
    if (size(declared) > maxRandomElements[dist])
      throw new ShapeError(
        'random',
        `a ${dist} draw holds at most ${maxRandomElements[dist]} elements, ${fmt(declared)} has ${size(declared)}`,
      );
    return declared;
  },
  eval: ([counter], { dist, seed, stream }, shape) => {
    const key = randomKey(seed, stream, Math.trunc(counter.data[0]));
    const out = new Float64Array(size(shape));
    const draw = dist === 'normal' ? normalAt : uniformAt;
    for (let i = 0; i < out.length; i++) out[i] = draw(key, i);
    return out;
  },
};
