// The browser side of test/browser-graphs.test.ts: traces a random program (transforms/check/graphArbitrary.ts) and
// its gradient in the page, compiles it for WebGL2 and returns the outputs; Node compares them with the interpreter.
import { valueAndGrad } from '../../transforms/grad.ts';
import { poolShape, runProgram, type Program } from '../../transforms/check/graphArbitrary.ts';
import type { NDArray } from '../../core/ndarray.ts';
import { isAvailable } from '../../compiler/index.ts';
import { compile } from '../../compiler/index.ts';
import * as op from '../../dsl/ops.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { trace } from '../../dsl/trace.ts';
import { kernelReport } from '../../web/session.ts';

export type WireArray = { shape: number[]; data: number[] };

const toNd = (a: WireArray): NDArray => ({ shape: a.shape, data: Float64Array.from(a.data) });
const toWire = (a: NDArray): WireArray => ({ shape: [...a.shape], data: Array.from(a.data) });

const api = {
  webgl2: isAvailable('webgl2'),
  /** The program's value and gradient wrt every input, compiled for WebGL2. */
  run(program: Program, args: Record<string, WireArray>) {
    const spec = Object.fromEntries(Object.keys(args).map((k) => [k, poolShape]));
    const graph = valueAndGrad(
      trace((a) => runProgram(program, a as Record<string, Tensor>), spec),
      Object.keys(args),
    );
    const exe = compile(graph, { backend: 'webgl2' });
    const out = exe.run(Object.fromEntries(Object.entries(args).map(([k, v]) => [k, toNd(v)])));
    return {
      backend: exe.backend,
      kernels: exe.kernels.length,
      outputs: Object.fromEntries(Object.entries(out).map(([k, v]) => [k, toWire(v)])),
    };
  },
  /** n uniforms from the counter-based RNG, drawn in a WebGL2 kernel. */
  uniforms(n: number, seed: number, stream: number, counter: number) {
    const exe = compile(
      trace(() => op.uniform([n], { seed, stream, counter }), {}),
      { backend: 'webgl2' },
    );
    return { backend: exe.backend, data: Array.from(exe.run({}).out.data) };
  },
  kernels: () => kernelReport('webgl2'),
};

export type GraphsApi = typeof api;
(window as unknown as { fusediffGraphs: GraphsApi }).fusediffGraphs = api;
