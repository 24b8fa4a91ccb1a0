// `fusediff demo` (what `npm start` runs until the training pipeline exists): a small denoiser written in the
// DSL is traced, differentiated, gradient-checked and fitted on the float64 interpreter, printing each stage.
import type { BackendRequest } from '../compiler/index.ts';
import { grad, gradName, valueAndGrad } from '../transforms/grad.ts';
import { checkGrads } from '../transforms/check/checkGrads.ts';
import { evaluate } from '../core/interpret.ts';
import type { Graph } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import * as fd from '../index.ts';
import { compileStep } from '../train/compileStep.ts';
import { adam } from '../dsl/optim.ts';

type Denoiser = { inp: fd.LinearParams; hid: fd.LinearParams; out: fd.LinearParams };

const embedDim = 16;
const hidden = 32;

const initDenoiser = (seed: number): Denoiser => ({
  inp: fd.nn.linear.init(fd.seedFor(seed, 'inp'), 2 + embedDim, hidden),
  hid: fd.nn.linear.init(fd.seedFor(seed, 'hid'), hidden, hidden),
  out: fd.nn.linear.init(fd.seedFor(seed, 'out'), hidden, 2),
});

/** eps-prediction MLP on 2-D points with a sinusoidal embedding of t in [0, 1]. */
const denoise = (p: fd.ParamTensors<Denoiser>, xt: fd.Tensor, t: fd.Tensor): fd.Tensor => {
  const h0 = fd.concat([xt, fd.timestepEmbedding(fd.mul(t, 1000), embedDim)], 1);
  const h1 = fd.silu(fd.nn.linear.apply(p.inp, h0));
  const h2 = fd.silu(fd.nn.linear.apply(p.hid, h1));
  return fd.nn.linear.apply(p.out, h2);
};

/** The DDPM eps objective with a cosine VP schedule: x_t = cos(pi t / 2) x0 + sin(pi t / 2) eps, noise drawn in-graph. */
const loss = (p: fd.ParamTensors<Denoiser>, x0: fd.Tensor, step: fd.Tensor<readonly []>, batch: number): fd.Tensor => {
  const t = fd.add(fd.mul(fd.uniform([batch, 1], { seed: 7, stream: 1, counter: step }), 0.98), 0.01);
  const eps = fd.normal([batch, 2], { seed: 7, stream: 2, counter: step });
  const angle = fd.mul(t, Math.PI / 2);
  const xt = fd.add(fd.mul(fd.cos(angle), x0), fd.mul(fd.sin(angle), eps));
  return fd.mse(denoise(p, xt, fd.reshape(t, [batch])), eps);
};

/** Eight Gaussians on a circle of radius 2 (std 0.1), drawn with the project's RNG. */
const eightGaussians = (n: number, seed: number): NDArray => {
  const g = fd.trace(() => fd.normal([n, 3], { seed, stream: 0 }), {});
  const z = evaluate(g, {}).out.data;
  const data = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    const k = Math.floor(((z[3 * i + 2] + 10) * 1e6) % 8);
    data[2 * i] = 2 * Math.cos((k * Math.PI) / 4) + 0.1 * z[3 * i];
    data[2 * i + 1] = 2 * Math.sin((k * Math.PI) / 4) + 0.1 * z[3 * i + 1];
  }
  return { shape: [n, 2], data };
};

const opCounts = (g: Graph) => {
  const counts = new Map<string, number>();
  for (const n of g.nodes) counts.set(n.op, (counts.get(n.op) ?? 0) + 1);
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
};

/** A wall time for people: milliseconds under 10 s (a fast backend's 200 steps are no '0.0 s'), else seconds. */
export const duration = (ms: number): string =>
  ms < 10_000 ? `${ms < 10 ? ms.toFixed(2) : Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;

export const demo = ({ steps, backend = 'auto' }: { steps: number; backend?: BackendRequest }): number => {
  const batch = 128;
  const params = initDenoiser(0);
  const data = eightGaussians(batch, 1);
  const spec = { p: fd.paramSpec(params), x0: [batch, 2], step: [] } as const;
  console.log(`fusediff demo: an eps-prediction MLP denoiser (${fd.paramCount(params)} parameters) on 8 Gaussians, batch ${batch}`);
  const target = backend === 'auto' ? 'the best backend available here (--backend auto)' : `the ${backend} backend`;
  console.log(`stages 1-4 run on the float64 reference interpreter; stage 5 compiles the same step into fused kernels for ${target}\n`);

  const graph = fd.trace(({ p, x0, step }) => loss(p, x0, step, batch), spec);
  console.log(`1. trace     loss graph: ${graph.nodes.length} nodes (${opCounts(graph)})`);
  const step = valueAndGrad(graph, ['p']);
  console.log(
    `2. grad      value-and-gradient graph: ${step.nodes.length} nodes, outputs ${step.outputs.length} (${grad(graph, ['p'])
      .outputs.map((o) => o.name)
      .slice(0, 3)
      .join(', ')}, ...)`,
  );

  const small = { p: params, x0: { shape: [8, 2], data: data.data.slice(0, 16) }, step: { shape: [], data: Float64Array.of(3) } };
  const report = checkGrads(({ p, x0, step }) => loss(p, x0, step as fd.Tensor<readonly []>, 8), small, { wrt: ['p'], order: 2 });
  console.log(
    `3. check     checkGrads (orders 1 and 2, ${report.checks} random directions): ${report.ok ? 'ok' : 'FAILED'}, ` +
      `worst rel err ${report.worst.relErr.toExponential(2)}`,
  );
  if (!report.ok) return 1;

  // Adam on the host, in float64: the compiled, fused optimizer step belongs to the compiler.
  const names = fd.flattenParams(params).map(([n]) => n);
  const values = new Map(fd.flattenParams(params).map(([n, v]) => [`p.${n}`, { shape: v.shape, data: v.data.slice() }]));
  const m = new Map([...values].map(([n, v]) => [n, new Float64Array(v.data.length)]));
  const v2 = new Map([...values].map(([n, v]) => [n, new Float64Array(v.data.length)]));
  const [lr, b1, b2] = [3e-3, 0.9, 0.999];
  const start = performance.now();
  let first = NaN,
    recent: number[] = [];
  for (let s = 1; s <= steps; s++) {
    const out = evaluate(step, { ...Object.fromEntries(values), x0: data, step: { shape: [], data: Float64Array.of(s) } });
    const l = out.out.data[0];
    if (!Number.isFinite(l)) throw new Error(`demo: non-finite loss ${l} at step ${s}`);
    if (s === 1) first = l;
    recent = [...recent.slice(-19), l];
    for (const n of names.map((k) => `p.${k}`)) {
      const g = out[gradName(n)].data,
        w = values.get(n)!.data,
        mm = m.get(n)!,
        vv = v2.get(n)!;
      for (let i = 0; i < w.length; i++) {
        mm[i] = b1 * mm[i] + (1 - b1) * g[i];
        vv[i] = b2 * vv[i] + (1 - b2) * g[i] * g[i];
        w[i] -= (lr * (mm[i] / (1 - b1 ** s))) / (Math.sqrt(vv[i] / (1 - b2 ** s)) + 1e-8);
      }
    }
    if (s % 50 === 0 || s === steps)
      console.log(
        `   step ${String(s).padStart(4)}  loss ${l.toFixed(4)}  ` +
          `(mean of last 20: ${(recent.reduce((a, b) => a + b) / recent.length).toFixed(4)})`,
      );
  }
  const last = recent.reduce((a, b) => a + b) / recent.length;
  console.log(
    `4. fit       Adam, ${steps} steps in ${duration(performance.now() - start)} on the interpreter: ` +
      `loss ${first.toFixed(4)} -> ${last.toFixed(4)} (mean of the last 20 steps)`,
  );

  // 5. the same step compiled into fused kernels for the backend asked for, state on the device; under auto the
  // untimed choice (a demo of a few hundred small steps would spend longer timing two candidates than it saves)
  const compiled = compileStep(
    ({ params: p, step: s, x0 }) => loss(p as unknown as fd.ParamTensors<Denoiser>, x0, s as fd.Tensor<readonly []>, batch),
    { params, optimizer: adam({ lr }), data: { x0: [batch, 2] }, backend },
  );
  const exe = compiled.executable;
  const t1 = performance.now();
  let c0 = NaN,
    cl: number[] = [];
  for (let s = 1; s <= steps; s++) {
    const l = compiled.run({ x0: data });
    if (s === 1) c0 = l;
    cl = [...cl.slice(-19), l];
  }
  const cLast = cl.reduce((a, b) => a + b) / cl.length;
  console.log(
    `5. compile   backend ${exe.backend} (${exe.backendReason}): ${exe.kernels.length} fused kernels ` +
      `for ${exe.program.graph.nodes.length} nodes; ${steps} steps in ${duration(performance.now() - t1)}: ` +
      `loss ${c0.toFixed(4)} -> ${cLast.toFixed(4)}`,
  );
  return last < first && cLast < c0 ? 0 : 1;
};
