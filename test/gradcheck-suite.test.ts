// The property suite, one test per primitive: each primitive's vjp (orders 1 and 2) against finite
// differences on random shapes and values; random graphs; the stopGradient laws; and shrinking.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vjpRules } from '../transforms/vjpRules.ts';
import { runSuite, suiteNames } from '../transforms/check/suite.ts';
import * as op from '../dsl/ops.ts';

const runs = 30; // per primitive in `npm test`; `fusediff gradcheck --runs 100` runs the full count
const seed = 20261125;

for (const name of suiteNames()) {
  test(`property: ${name} gradient matches finite differences`, () => {
    const [r] = runSuite({ runs, seed, only: [name] }).primitives;
    assert.ok(r.ok, `${name}: ${r.counterexample}`);
    assert.equal(r.runs, runs);
  });
}

test('property: random composite graphs', () => {
  const { graphs } = runSuite({ runs: 60, seed, only: ['graphs'] });
  assert.equal(graphs.failures, 0, graphs.counterexample);
  assert.equal(graphs.runs, 60);
});

test('a wrong rule inside random graphs shrinks to a minimal failing graph', () => {
  const saved = vjpRules.tanh;
  vjpRules.tanh = ({ ct, out }) => [op.mul(ct, op.sub(1, out))]; // wrong: 1 - out^2
  try {
    const { graphs } = runSuite({ runs: 200, seed, only: ['graphs'] });
    assert.equal(graphs.failures, 1);
    const lines = graphs.counterexample!.split('\n');
    // the minimal program applies tanh once (directly or inside exp∘tanh) and reduces
    assert.ok(lines.length <= 3, graphs.counterexample);
    assert.match(graphs.counterexample!, /tanh/);
    assert.match(graphs.counterexample!, /worst local vjp: tanh/);
  } finally {
    vjpRules.tanh = saved;
  }
});
