// The property-based gradient suite behind `fusediff gradcheck` and the tests: every primitive's vjp against
// finite differences (orders 1 and 2), the composites, random composite graphs with shrinking, and the
// stopGradient and frozen-network laws.
import fc from 'fast-check';
import * as op from '../../dsl/ops.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { trace } from '../../dsl/trace.ts';
import { grad, gradName } from '../grad.ts';
import { evaluate } from '../../core/interpret.ts';
import { checkGrads, type GradCheckReport } from './checkGrads.ts';
import { describeProgram, graphCaseArb, programSpec, runProgram, type GraphCase } from './graphArbitrary.ts';
import { compositeCases, frozenCaseArb, frozenLaw } from './compositeCases.ts';
import { primitiveCases, type PrimitiveCase } from './primitiveCases.ts';

export interface PrimitiveResult {
  name: string;
  runs: number;
  maxRelErr: number;
  ok: boolean;
  /** the shrunk failing case, when not ok */
  counterexample?: string;
}

/** The names the property suite checks: every primitive and composite case, then the stopGradient and frozen laws. */
export const suiteNames = (): string[] => [...Object.keys(primitiveCases), ...Object.keys(compositeCases), 'stopGradient', 'frozen'];

/** The result of `runSuite`: one result per name, the random-program checks, and the time taken. */
export interface SuiteReport {
  seed: number;
  primitives: PrimitiveResult[];
  graphs: { runs: number; failures: number; maxRelErr: number; counterexample?: string };
  seconds: number;
}

export interface SuiteOptions {
  runs: number;
  seed: number;
  /** primitives to run (default all) */
  only?: readonly string[];
  onResult?: (r: PrimitiveResult) => void;
}

const reportText = (r: GradCheckReport) =>
  `order ${r.worst.order}: finite difference ${r.worst.finiteDifference}, ` +
  `reverse mode ${r.worst.reverseMode} (rel err ${r.worst.relErr.toExponential(2)})` +
  (r.culprit ? `; worst local vjp: ${r.culprit.op}${r.culprit.site ? ` at ${r.culprit.site}` : ''}` : '');

const runProperty = <T>(
  name: string,
  arb: fc.Arbitrary<T>,
  runs: number,
  seed: number,
  check: (x: T) => { ok: boolean; relErr: number; text?: string },
  show: (x: T) => string,
): PrimitiveResult => {
  let maxRelErr = 0;
  let lastText = '';
  const details = fc.check(
    fc.property(arb, (x) => {
      const r = check(x);
      maxRelErr = Math.max(maxRelErr, r.relErr);
      if (!r.ok) lastText = r.text ?? '';
      return r.ok;
    }),
    { numRuns: runs, seed },
  );
  const result: PrimitiveResult = { name, runs: details.numRuns, maxRelErr, ok: !details.failed };
  if (details.failed)
    result.counterexample = details.counterexample
      ? `${show(details.counterexample[0])}\n${lastText}`
      : String(details.errorInstance ?? 'failed');
  return result;
};

const checkCase = (c: PrimitiveCase) => {
  const r = checkGrads(c.fn, c.args, { order: 2, wrt: c.wrt });
  return { ok: r.ok, relErr: r.worst.relErr, text: reportText(r) };
};

/**
 * stopGradient laws on random programs P, Q: the forward value is unchanged, the gradient through
 * stopGradient(P) is exactly zero, and grad(P + stopGradient(Q)) = grad(P).
 */
const stopGradientLaws = (c: GraphCase) => {
  const spec = programSpec(c.args);
  const wrt = Object.keys(c.args);
  const plain = trace((a) => runProgram(c.program, a), spec);
  const stopped = trace((a) => op.stopGradient(runProgram(c.program, a)), spec);
  const mixed = trace((a) => op.add(runProgram(c.program, a), op.stopGradient(op.mul(runProgram(c.program, a), 3))), spec);
  const same = evaluate(plain, c.args).out.data[0] === evaluate(stopped, c.args).out.data[0];
  const zero = Object.values(evaluate(grad(stopped, wrt), c.args)).every((g) => g.data.every((v) => v === 0));
  const gp = evaluate(grad(plain, wrt), c.args);
  const gm = evaluate(grad(mixed, wrt), c.args);
  const equal = wrt.every((n) => gp[gradName(n)].data.every((v, i) => v === gm[gradName(n)].data[i]));
  return {
    ok: same && zero && equal,
    relErr: 0,
    text: `forward unchanged: ${same}, gradient zero: ${zero}, grad(P + sg(Q)) = grad(P): ${equal}`,
  };
};

/**
 * The fast-check gradient suite (`fusediff gradcheck`): `checkGrads` at order 2 on random inputs of every primitive and
 * composite, the stopGradient and frozen laws, and at order 1 on random programs; `runs` cases each, reproducible from
 * `seed`.
 */
export const runSuite = ({ runs, seed, only, onResult }: SuiteOptions): SuiteReport => {
  const start = performance.now();
  const cases = { ...primitiveCases, ...compositeCases };
  const names = suiteNames().filter((n) => !only || only.includes(n));
  const primitives = names.map((name) => {
    const r =
      name === 'stopGradient'
        ? runProperty(name, graphCaseArb(4), runs, seed, stopGradientLaws, (c) => describeProgram(c.program))
        : name === 'frozen'
          ? runProperty(name, frozenCaseArb, runs, seed, frozenLaw, (c) => `widths [${c.widths}], seed ${c.seed}, x [${c.x.shape}]`)
          : runProperty(name, cases[name], runs, seed, checkCase, (c) => c.describe);
    onResult?.(r);
    return r;
  });
  const graphs =
    only && !only.includes('graphs')
      ? { runs: 0, failures: 0, maxRelErr: 0 }
      : (() => {
          const r = runProperty(
            'graphs',
            graphCaseArb(8),
            runs,
            seed,
            (c) => {
              const rep = checkGrads((a) => runProgram(c.program, a as Record<string, Tensor>), c.args, { order: 1 });
              return { ok: rep.ok, relErr: rep.worst.relErr, text: reportText(rep) };
            },
            (c) => describeProgram(c.program),
          );
          return {
            runs: r.runs,
            failures: r.ok ? 0 : 1,
            maxRelErr: r.maxRelErr,
            ...(r.counterexample ? { counterexample: r.counterexample } : {}),
          };
        })();
  return { seed, primitives, graphs, seconds: (performance.now() - start) / 1000 };
};
