// The browser side of test/browser-graphs.test.ts: traces a random program (transforms/check/graphArbitrary.ts) and
// its gradient in the page, compiles it for WebGL2 and returns the outputs; Node compares them with the interpreter.
import { valueAndGrad } from '../../transforms/grad.ts';
import { poolShape, runProgram, type Program } from '../../transforms/check/graphArbitrary.ts';
import type { NDArray } from '../../core/ndarray.ts';
import { createBackend, isAvailable } from '../../compiler/index.ts';
import { compile } from '../../compiler/index.ts';
import { compileStep } from '../../train/compileStep.ts';
import { adam } from '../../dsl/optim.ts';
import * as nn from '../../dsl/nn.ts';
import { flattenParams, initNormal, seedFor, type ParamTensors, type Params } from '../../dsl/params.ts';
import * as op from '../../dsl/ops.ts';
import { mse } from '../../dsl/composites.ts';
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
  /**
   * Five steps of a small MLP's training on the wasm backend with each thread count: the losses, the parameters
   * after them, and how many kernel calls were split over Web Workers (the page is cross-origin isolated).
   */
  async wasmThreads(counts: number[]) {
    const params = { l1: nn.linear.init(seedFor(3, 'l1'), 64, 128), l2: nn.linear.init(seedFor(3, 'l2'), 128, 64) };
    const x = initNormal([256, 64], 1, 9);
    const runs = [];
    for (const threads of counts) {
      const backend = createBackend('wasm', { threads });
      const step = compileStep(
        ({ params: p, x: xs }) => {
          const q = p as unknown as ParamTensors<typeof params>;
          return mse(nn.linear.apply(q.l2, op.tanh(nn.linear.apply(q.l1, xs))), xs);
        },
        { params, optimizer: adam({ lr: 0.01 }), data: { x: [256, 64] }, backend },
      );
      await new Promise((r) => setTimeout(r, 200)); // the workers start once this script yields
      const losses = [];
      for (let i = 0; i < 5; i++) losses.push(step.run({ x }));
      const flat = flattenParams(step.params() as Params);
      runs.push({
        threads,
        reason: step.executable.backendReason,
        splitCalls: step.executable.splitKernelCalls?.() ?? 0,
        losses,
        params: flat.flatMap(([, v]) => Array.from(v.data)),
      });
      step.dispose();
      await backend.dispose();
    }
    return { crossOriginIsolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true, runs };
  },
};

export type GraphsApi = typeof api;
(window as unknown as { fusediffGraphs: GraphsApi }).fusediffGraphs = api;
