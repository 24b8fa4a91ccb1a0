// Losses take operands of one shape (issue 23, item 9): mse(pred [N,1], y [N]) used to average over the broadcast
// [N,N] without an error (1.87 instead of 0 on identical data, and checkGrads said ok). Every built-in loss and
// distance now refuses different shapes with a ShapeError naming the op, both shapes and the call site; broadcasting
// happens only under an explicit { broadcast: true }.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluate } from '../core/interpret.ts';
import type { NDArray } from '../core/ndarray.ts';
import { ShapeError } from '../core/shape.ts';
import * as fd from '../index.ts';
import { checkGrads } from '../transforms/check/checkGrads.ts';
import { bindInputs, initNormal, paramSpec, type Params } from '../dsl/params.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace, type Spec } from '../dsl/trace.ts';
import { createDenoiser, type Denoiser } from '../models/index.ts';
import { cosineSchedule } from '../models/schedule.ts';
import { featureDistance, mseObjective, selfPerceptualObjective, weightedSum, type ObjectiveArgs } from '../objectives/index.ts';
import { caught, sitesOf } from './support/sites.ts';

const { file: thisFile, siteLine } = sitesOf(import.meta.url);

/** A ShapeError from `opName` whose message names the op, both shapes and this file at the tagged line. */
const assertLossShapeError = (e: Error, opName: string, shapes: readonly string[], tag?: string): void => {
  assert.ok(e instanceof ShapeError, `expected a ShapeError, got ${e.name}: ${e.message}`);
  assert.equal(e.op, opName);
  assert.match(e.message, new RegExp(`^${opName}\\b`), 'the message starts with the op name');
  for (const s of shapes) assert.ok(e.message.includes(s), `message should contain ${s}: ${e.message}`);
  assert.match(e.message, /broadcast: true/, 'the message names the opt-in');
  if (tag)
    assert.ok(
      e.message.includes(`${thisFile}:${siteLine(tag)}:`),
      `message should name line ${siteLine(tag)} of ${thisFile}: ${e.message}`,
    );
};

const N = 5;
const column = (values: readonly number[]): NDArray => ({ shape: [values.length, 1], data: Float64Array.from(values) });
const vector = (values: readonly number[]): NDArray => ({ shape: [values.length], data: Float64Array.from(values) });
const data = [0.3, -1.2, 2.5, 0.7, -0.4];
const jsMean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** mean over the broadcast [N,N] of f(pred_i - y_j): what the old code computed for pred [N,1] and y [N]. */
const overPairs = (p: readonly number[], y: readonly number[], f: (d: number) => number) =>
  jsMean(p.flatMap((a) => y.map((b) => f(a - b))));

const losses = [
  ['mse', (a: Tensor, b: Tensor, o?: fd.LossOptions) => fd.mse(a, b, o)],
  ['mae', (a: Tensor, b: Tensor, o?: fd.LossOptions) => fd.mae(a, b, o)],
] as const;

test('the finding: mse of pred [N,1] and y [N] holding identical data throws instead of returning the [N,N] mean', () => {
  const e = caught(() =>
    fd.trace(
      ({ pred, y }) => {
        return fd.mse(pred, y); // @site:finding
      },
      { pred: [N, 1], y: [N] },
    ),
  );
  assertLossShapeError(e, 'mse', ['[5,1]', '[5]', '[5,5]'], 'finding');
  // the same data with the shapes made equal: exactly 0
  const g = fd.trace(({ pred, y }) => fd.mse(fd.reshape(pred, [N]), y), { pred: [N, 1], y: [N] });
  assert.deepEqual([...evaluate(g, { pred: column(data), y: vector(data) }).out.data], [0]);
});

test('checkGrads of the finding throws at trace time instead of reporting ok', () => {
  const e = caught(() =>
    checkGrads(
      ({ pred, y }: { pred: Tensor; y: Tensor }) => fd.mse(pred, y), // @site:checkGrads
      { pred: column(data), y: vector(data) },
    ),
  );
  assertLossShapeError(e, 'mse', ['[5,1]', '[5]'], 'checkGrads');
});

for (const [name, loss] of losses) {
  test(`${name} of [N,1] and [N], and of [N] and [N,1]: ShapeError naming ${name}, both shapes and this file`, () => {
    const e1 = caught(() => fd.trace(({ a, b }) => loss(a, b), { a: [N, 1], b: [N] }));
    assertLossShapeError(e1, name, ['[5,1] and [5]']);
    assert.ok(e1.message.includes(thisFile), `message should name this file: ${e1.message}`);
    const e2 = caught(() => fd.trace(({ a, b }) => loss(a, b), { a: [N], b: [N, 1] }));
    assertLossShapeError(e2, name, ['[5] and [5,1]']);
    assert.ok(e2.message.includes(thisFile), `message should name this file: ${e2.message}`);
  });

  test(`${name}: a size-1 axis of difference ([N] vs [1,N]) and non-broadcastable shapes are refused too`, () => {
    assertLossShapeError(
      caught(() => fd.trace(({ a, b }) => loss(a, b), { a: [N], b: [1, N] })),
      name,
      ['[5]', '[1,5]'],
    );
    const e = caught(() => fd.trace(({ a, b }) => loss(a, b), { a: [3], b: [4] }));
    assertLossShapeError(e, name, ['[3]', '[4]']);
    assert.doesNotMatch(e.message, /would broadcast/);
  });

  test(`${name} of equal shapes is the mean over all elements`, () => {
    const a = { shape: [2, 3], data: Float64Array.of(1, 2, 3, 4, 5, 6) };
    const b = { shape: [2, 3], data: Float64Array.of(0.5, 2, 4, 1, 5, 9) };
    const g = fd.trace(({ a: x, b: y }) => loss(x, y), { a: [2, 3], b: [2, 3] });
    const d = [...a.data].map((v, i) => v - b.data[i]);
    const want = name === 'mse' ? jsMean(d.map((v) => v * v)) : jsMean(d.map(Math.abs));
    assert.ok(Math.abs(evaluate(g, { a, b }).out.data[0] - want) < 1e-12);
    // and its gradients are right
    const report = checkGrads(({ x, y }: { x: Tensor; y: Tensor }) => loss(x, y), { x: a, y: { ...b, data: b.data.map((v) => v + 0.1) } });
    assert.ok(report.ok, JSON.stringify(report.worst));
  });

  test(`${name} with { broadcast: true } still broadcasts, as numpy (the [N,N] mean of the finding)`, () => {
    const g = fd.trace(({ pred, y }) => loss(pred, y, { broadcast: true }), { pred: [N, 1], y: [N] });
    const got = evaluate(g, { pred: column(data), y: vector(data) }).out.data[0];
    const want = overPairs(data, data, name === 'mse' ? (d) => d * d : Math.abs);
    assert.ok(want > 1, 'the broadcast mean is far from 0');
    assert.ok(Math.abs(got - want) < 1e-12, `${got} vs ${want}`);
    // { broadcast: false } is the default
    assertLossShapeError(
      caught(() => fd.trace(({ pred, y }) => loss(pred, y, { broadcast: false }), { pred: [N, 1], y: [N] })),
      name,
      ['[5,1]', '[5]'],
    );
  });
}

test('crossEntropy keeps refusing labels that are not the logits shape without its last axis', () => {
  const e = caught(() => fd.trace(({ z, y }) => fd.crossEntropy(z, y), { z: [N, 3], y: [N, 1] }));
  assert.ok(e instanceof ShapeError && e.op === 'crossEntropy', e.message);
  assert.ok(e.message.includes('[5,1]') && e.message.includes('[5,3]') && e.message.includes(thisFile), e.message);
});

test("the self-perceptual feature distance (both 'mse' and 'mae') refuses different shapes, broadcasts on request", () => {
  for (const distance of ['mse', 'mae'] as const) {
    const e = caught(() => fd.trace(({ a, b }) => featureDistance(a, b, distance), { a: [N, 1], b: [N] }));
    assertLossShapeError(e, 'featureDistance', ['[5,1] and [5]', '[5,5]']);
    const g = fd.trace(({ a, b }) => featureDistance(a, b, distance, { broadcast: true }), { a: [N, 1], b: [N] });
    const want = overPairs(data, data, distance === 'mse' ? (d) => d * d : Math.abs);
    assert.ok(Math.abs(evaluate(g, { a: column(data), b: vector(data) }).out.data[0] - want) < 1e-12);
    const same = fd.trace(({ a, b }) => featureDistance(a, b, distance), { a: [N], b: [N] });
    assert.deepEqual([...evaluate(same, { a: vector(data), b: vector(data) }).out.data], [0]);
  }
  assert.throws(() => featureDistance(undefined as never, undefined as never, 'l2' as never), /distance must be 'mse' or 'mae', got 'l2'/);
});

// ---- the objectives: a denoiser whose prediction is not [B, ...dataShape] -----------------------------------

const schedule = cosineSchedule(20);
const B = 4;

/** The tiny MLP denoiser with an extra trailing axis on its output: [B, 2] -> [B, 2, 1]. */
const withBadOutput = (m: Denoiser): Denoiser => ({
  ...m,
  layers: m.layers,
  signature: m.signature,
  apply: (params, x, t, c, opts) => {
    const out = m.apply(params, x, t, c, opts);
    return opts?.until ? out : fd.reshape(out, [...out.shape, 1]);
  },
});

const objectiveGraph = (objective: (a: ObjectiveArgs) => Tensor, params: Params) =>
  trace((a) => objective(a as unknown as ObjectiveArgs), { params: paramSpec(params), x0: [B, 2], step: [] } as Record<string, Spec>);

test("mseObjective and selfPerceptualObjective refuse a prediction that is not the data's shape", () => {
  const model = createDenoiser({ kind: 'mlp', dim: 2, hidden: 8, depth: 2, timeDim: 4 });
  const params = model.init(1);
  const bad = withBadOutput(model);
  const e1 = caught(() => objectiveGraph(mseObjective({ model: bad, schedule, prediction: 'eps' }), params));
  assert.ok(e1 instanceof ShapeError && e1.op === 'mseObjective', e1.message);
  assert.ok(e1.message.includes('[4,2,1]') && e1.message.includes('[4,2]'), e1.message);
  const e2 = caught(() =>
    objectiveGraph(selfPerceptualObjective({ model: bad, frozenParams: params, schedule, prediction: 'v', layer: 'out' }), params),
  );
  assert.ok(e2 instanceof ShapeError && e2.op === 'selfPerceptual', e2.message);
  assert.ok(e2.message.includes('[4,2,1]') && e2.message.includes('[4,2]'), e2.message);
  // the unmodified model traces and evaluates as before
  const g = objectiveGraph(mseObjective({ model, schedule, prediction: 'eps' }), params);
  const inputs = { ...bindInputs({ params }), x0: initNormal([B, 2], 1, 3), step: { shape: [], data: Float64Array.of(1) } };
  assert.ok(Number.isFinite(evaluate(g, inputs).out.data[0]));
});

test('weightedSum refuses an objective that returns a non-scalar instead of broadcasting the terms', () => {
  const model = createDenoiser({ kind: 'mlp', dim: 2, hidden: 8, depth: 2, timeDim: 4 });
  const params = model.init(1);
  const perSample = ({ x0 }: ObjectiveArgs) => fd.sum(fd.mul(x0, x0), 1); // [B], not a loss
  const mse = mseObjective({ model, schedule, prediction: 'eps' });
  const e = caught(() => objectiveGraph(weightedSum([1, mse], [0.5, perSample]), params));
  assert.ok(e instanceof ShapeError && e.op === 'weightedSum', e.message);
  assert.match(e.message, /term 1 returned \[4\]/);
  assert.ok(objectiveGraph(weightedSum([1, mse], [0.5, mse]), params).nodes.length > 0);
});
