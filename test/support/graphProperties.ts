// The compiled-versus-interpreter properties that several suites run on their own backends (test/trust.test.ts,
// test/webgpu.test.ts in Node, test/browser-graphs.test.ts in the page): the issue-11 examples, hard programs (NaN and
// +-Infinity inputs, negative and non-finite constants), random graphs and every primitive, each a value and its
// gradient. A suite says how a graph runs on its backend (a GraphRunner); this module rounds the inputs to f32,
// compares with the float64 interpreter (trustExamples.ts: NaN is NaN, an infinity the same infinity, else within
// 1e-4 (1 + |ref|)) and words the failure: the mismatch, the program and, for hard programs, the inputs.
import fc from 'fast-check';
import { evaluate } from '../../core/interpret.ts';
import type { Graph } from '../../core/ir.ts';
import type { NDArray } from '../../core/ndarray.ts';
import * as op from '../../dsl/ops.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { trace } from '../../dsl/trace.ts';
import { valueAndGrad } from '../../transforms/grad.ts';
import {
  describeProgram,
  graphCaseArb,
  hardGraphCaseArb,
  programSpec,
  runProgram,
  type GraphCase,
} from '../../transforms/check/graphArbitrary.ts';
import { primitiveCases } from '../../transforms/check/primitiveCases.ts';
import { examples, f32, mismatches, show, withinF32 } from './trustExamples.ts';

export type Fusion = 'fused' | 'unfused';
type Arrays = Record<string, NDArray>;

/**
 * Runs a graph on the backend under test and returns its outputs, or the message of an error it reported (a page
 * returns errors as text). Throwing counts as that message too. It is given inputs already rounded to f32.
 */
export type GraphRunner = (graph: Graph, args: Arrays, fusion: Fusion) => Arrays | string | Promise<Arrays | string>;

/** The mismatches of a run against the interpreter (both given the inputs rounded to f32), its error, or undefined. */
export const checkRun = async (run: GraphRunner, graph: Graph, args64: Arrays, fusion: Fusion = 'fused'): Promise<string | undefined> => {
  const args = f32(args64);
  let got: Arrays | string;
  try {
    got = await run(graph, args, fusion);
  } catch (e) {
    return (e as Error).message;
  }
  return typeof got === 'string' ? got : mismatches(evaluate(graph, args), got);
};

/** A random program's value and gradient with respect to every input, traced on the pool's shape. */
export const programGraph = (c: GraphCase): Graph =>
  valueAndGrad(
    trace((a) => runProgram(c.program, a as Record<string, Tensor>), programSpec(c.args)),
    Object.keys(c.args),
  );

/** A failed program's report: the mismatch's first line, the program, and the inputs where they are given. */
export const programFailure = (bad: string, c: GraphCase, args?: Arrays): Error => {
  const inputs = args
    ? '\n' +
      Object.entries(args)
        .map(([k, v]) => `${k} = [${[...v.data].map(show).join(', ')}]`)
        .join('; ')
    : '';
  return new Error(`${bad.split('\n')[0].slice(0, 400)}\n${describeProgram(c.program)}${inputs}`);
};

/** The issue-11 examples that disagree with the interpreter or fail: '<name>: <first line of what went wrong>' each. */
export const exampleFailures = async (run: GraphRunner): Promise<string[]> => {
  const failures: string[] = [];
  for (const ex of examples) {
    const bad = await checkRun(run, ex.graph(), ex.args);
    if (bad) failures.push(`${ex.name}: ${bad.split('\n')[0].slice(0, 300)}`);
  }
  return failures;
};

export interface Runs {
  readonly numRuns: number;
  readonly seed: number;
}

/**
 * Hard programs and their gradients: fast-check's property (it shrinks a failure to a small program). Programs whose
 * float64 values leave float32's range or come near a tie are discarded (withinF32): there the two legitimately differ.
 */
export const assertHardPrograms = (run: GraphRunner, { numRuns, seed }: Runs): Promise<void> =>
  fc.assert(
    fc.asyncProperty(hardGraphCaseArb(5), async (c) => {
      const graph = programGraph(c);
      const args = f32(c.args);
      fc.pre(withinF32(graph, args));
      const bad = await checkRun(run, graph, args);
      if (bad) throw programFailure(bad, c, args);
    }),
    { numRuns, seed, maxSkipsPerRun: 10, includeErrorInReport: true },
  );

/** Random programs (finite inputs away from kinks) and their gradients: fast-check's property, shrinking. */
export const assertRandomGraphs = (run: GraphRunner, { numRuns, seed }: Runs): Promise<void> =>
  fc.assert(
    fc.asyncProperty(graphCaseArb(6), async (c) => {
      const bad = await checkRun(run, programGraph(c), c.args);
      if (bad) throw programFailure(bad, c);
    }),
    { numRuns, seed },
  );

/**
 * Every primitive, forward and gradient (of sum(f(args) * 0.5)), compiled fused and unfused; `numRuns` draws of each.
 * Returns how many graphs ran.
 */
export const assertPrimitives = async (run: GraphRunner, { numRuns, seed }: Runs): Promise<number> => {
  let graphs = 0;
  for (const [name, arb] of Object.entries(primitiveCases)) {
    await fc.assert(
      fc.asyncProperty(arb, async (c) => {
        const spec = Object.fromEntries(Object.entries(c.args).map(([k, v]) => [k, v.shape]));
        const g = valueAndGrad(
          trace((a) => op.sum(op.mul(c.fn(a as Record<string, Tensor>), 0.5)), spec),
          c.wrt ?? Object.keys(c.args),
        );
        for (const fusion of ['fused', 'unfused'] as const) {
          const bad = await checkRun(run, g, c.args as Arrays, fusion);
          graphs++;
          if (bad) throw new Error(`${name} (${fusion}) ${c.describe}: ${bad}`);
        }
      }),
      { numRuns, seed },
    );
  }
  return graphs;
};

/** How many primitives assertPrimitives covers. */
export const primitiveCount = Object.keys(primitiveCases).length;
