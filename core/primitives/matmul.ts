import { fmt, ShapeError, size } from '../shape.ts';
import type { PrimitiveImpl } from './types.ts';

/** Batched matmul [...B, M, K] x [...B, K, N] -> [...B, M, N]; batch dims are equal (the DSL broadcasts them first). */
export const matmul: PrimitiveImpl<'matmul'> = {
  shape: ([a, b]) => {
    const r = a.length;
    if (r < 2 || b.length !== r) throw new ShapeError('matmul', `operands must have equal rank >= 2, got ${fmt(a)} and ${fmt(b)}`);
    if (a[r - 1] !== b[r - 2])
      throw new ShapeError('matmul', `inner dimensions differ: ${fmt(a)} x ${fmt(b)} (${a[r - 1]} vs ${b[r - 2]})`);
    if (a.slice(0, -2).some((d, i) => d !== b[i])) throw new ShapeError('matmul', `batch dimensions differ: ${fmt(a)} x ${fmt(b)}`);
    return [...a.slice(0, -1), b[r - 1]];
  },
  eval: ([a, b], _attrs, shape) => {
    const r = shape.length;
    const [M, K, N] = [a.shape[r - 2], a.shape[r - 1], b.shape[r - 1]];
    const batch = size(shape.slice(0, -2));
    const out = new Float64Array(batch * M * N);
    for (let t = 0; t < batch; t++)
      for (let i = 0; i < M; i++)
        for (let k = 0; k < K; k++) {
          const av = a.data[t * M * K + i * K + k];
          const bo = t * K * N + k * N;
          const oo = t * M * N + i * N;
          for (let j = 0; j < N; j++) out[oo + j] += av * b.data[bo + j];
        }
    return out;
  },
};
