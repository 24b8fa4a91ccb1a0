// Optimizers written as DSL functions, so the update is traced into the same graph as the gradient and fused
// by the compiler like everything else. State lives in parameter-shaped trees.
import type { NDArray } from '../core/ndarray.ts';
import * as op from './ops.ts';
import { mapParams, zerosArray, type Params, type ParamTensors } from './params.ts';
import type { Tensor } from './tensor.ts';
import { flatten, unflatten } from './tree.ts';
import { isTensor } from './trace.ts';

/** An optimizer as DSL functions (its update is traced into the training step's graph): `sgd`, `adam`. */
export interface Optimizer {
  readonly name: string;
  /** initial state for a parameter tree, e.g. { m: zeros, v: zeros } */
  init(params: Params): Params;
  /** one update: new parameters and state; `step` counts from 1 */
  update(
    params: ParamTensors<Params>,
    grads: ParamTensors<Params>,
    state: ParamTensors<Params>,
    step: Tensor,
  ): { params: ParamTensors<Params>; state: ParamTensors<Params> };
}

type T = ParamTensors<Params>;
const leaves = (t: T) => flatten(t as never, isTensor) as [string, Tensor][];
const zip = (t: T, ...others: T[]) => {
  const maps = others.map((o) => new Map(leaves(o)));
  return leaves(t).map(([p, v]) => [p, v, ...maps.map((m) => m.get(p)!)] as const);
};
const build = (entries: [string, Tensor][]): T => unflatten(entries) as T;

/** SGD with optional (heavy-ball) momentum and L2 weight decay added to the gradient. */
export const sgd = ({ lr, momentum = 0, weightDecay = 0 }: { lr: number; momentum?: number; weightDecay?: number }): Optimizer => ({
  name: `sgd(lr=${lr}, momentum=${momentum}${weightDecay ? `, weightDecay=${weightDecay}` : ''})`,
  init: (params): Params => (momentum ? { velocity: mapParams(params, (a: NDArray) => zerosArray(a.shape)) } : ({} as Params)),
  update: (params, grads, state) => {
    const vel = momentum ? ((state as Record<string, T>).velocity as T) : undefined;
    const newP: [string, Tensor][] = [];
    const newV: [string, Tensor][] = [];
    for (const [path, p, g, v] of zip(params, grads, ...(vel ? [vel] : []))) {
      const grad = weightDecay ? op.add(g, op.mul(p, weightDecay)) : g;
      const d = v ? op.add(op.mul(v, momentum), grad) : grad;
      if (v) newV.push([path, d]);
      newP.push([path, op.sub(p, op.mul(d, lr))]);
    }
    return { params: build(newP), state: vel ? ({ velocity: build(newV) } as T) : ({} as T) };
  },
});

/** Adam (Kingma & Ba) with bias correction; weightDecay > 0 gives AdamW's decoupled decay. */
export const adam = ({
  lr,
  b1 = 0.9,
  b2 = 0.999,
  eps = 1e-8,
  weightDecay = 0,
}: {
  lr: number;
  b1?: number;
  b2?: number;
  eps?: number;
  weightDecay?: number;
}): Optimizer => ({
  name: `${weightDecay ? 'adamw' : 'adam'}(lr=${lr}, b1=${b1}, b2=${b2}, eps=${eps}${weightDecay ? `, weightDecay=${weightDecay}` : ''})`,
  init: (params) => ({
    m: mapParams(params, (a: NDArray) => zerosArray(a.shape)),
    v: mapParams(params, (a: NDArray) => zerosArray(a.shape)),
  }),
  update: (params, grads, state, step) => {
    const { m, v } = state as Record<string, T>;
    const c1 = op.sub(1, op.pow(b1, step)); // bias corrections 1 - b^t, scalars
    const c2 = op.sub(1, op.pow(b2, step));
    const newP: [string, Tensor][] = [],
      newM: [string, Tensor][] = [],
      newV: [string, Tensor][] = [];
    for (const [path, p, g, mi, vi] of zip(params, grads, m, v)) {
      const m2 = op.add(op.mul(mi, b1), op.mul(g, 1 - b1));
      const v2 = op.add(op.mul(vi, b2), op.mul(op.mul(g, g), 1 - b2));
      const upd = op.div(op.div(m2, c1), op.add(op.sqrt(op.div(v2, c2)), eps));
      const decayed = weightDecay ? op.sub(p, op.mul(p, lr * weightDecay)) : p;
      newP.push([path, op.sub(decayed, op.mul(upd, lr))]);
      newM.push([path, m2]);
      newV.push([path, v2]);
    }
    return { params: build(newP), state: { m: build(newM), v: build(newV) } as T };
  },
});
