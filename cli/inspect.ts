// `fusediff inspect <example>`: the compiled plan of an example step: each kernel's fused primitives, output,
// inputs and generated source, with totals against the unfused baseline.
import type { Graph } from '../core/ir.ts';
import type { BackendRequest } from '../compiler/index.ts';
import { compile, type Executable } from '../compiler/index.ts';
import { compileStep } from '../train/compileStep.ts';
import { compileReferenceStep } from '../workloads/referenceStep.ts';
import * as c from '../dsl/composites.ts';
import * as nn from '../dsl/nn.ts';
import { adam } from '../dsl/optim.ts';
import * as op from '../dsl/ops.ts';
import type { Params, ParamTensors } from '../dsl/params.ts';
import { trace } from '../dsl/trace.ts';

type Example = { describe: string; build: (backend: BackendRequest, fusion: 'fused' | 'unfused') => Executable };

const convParams = { conv: nn.conv2d.init(1, 1, 8, 3), norm: nn.groupNorm.init(2, 8), head: nn.conv2d.init(3, 8, 1, 1) };

export const examples: Record<string, Example> = {
  mlp: {
    describe: 'the reference MLP denoiser training step (batch 512, 66-256-256-256-2, SiLU, MSE on eps, Adam)',
    build: (backend, fusion) => compileReferenceStep(backend, fusion).executable,
  },
  softmax: {
    describe: 'softmax cross-entropy of a linear layer with its gradient (batch 64, 32 -> 10)',
    build: (backend, fusion) => {
      const g: Graph = trace(({ x, w, y }) => c.crossEntropy(op.matmul(x, w), y), { x: [64, 32], w: [32, 10], y: [64] });
      return compile(g, { backend, fusion });
    },
  },
  conv: {
    describe: 'a conv -> groupNorm -> SiLU -> 1x1 conv step with Adam (batch 8, 1x16x16)',
    build: (backend, fusion) =>
      compileStep(
        ({ params, x }) => {
          const p = params as unknown as ParamTensors<typeof convParams>;
          const h = c.silu(nn.groupNorm.apply(p.norm, nn.conv2d.apply(p.conv, x, { padding: 1 }), 4));
          return c.mse(nn.conv2d.apply(p.head, h), x);
        },
        { params: convParams as unknown as Params, optimizer: adam({ lr: 1e-3 }), data: { x: [8, 1, 16, 16] }, backend, fusion },
      ).executable,
  },
};

export interface InspectReport {
  example: string;
  backend: string;
  backendReason: string;
  kernels: number;
  primitives: number;
  unfusedKernels: number;
  buffers: number;
  bytes: number;
  naiveBytes: number;
  kernelList: { index: number; name: string; shape: readonly number[]; fused: readonly string[]; inputs: string[]; source: string }[];
}

export const inspect = (name: string, backend: BackendRequest): InspectReport => {
  const ex = examples[name];
  if (!ex) throw new Error(`inspect: unknown example '${name}'; examples: ${Object.keys(examples).join(', ')}`);
  const exe = ex.build(backend, 'fused');
  const unfused = ex.build(exe.backend, 'unfused');
  const g = exe.program.graph;
  const label = (id: number) => {
    const n = g.nodes[id];
    if (n.op === 'input') return n.attrs.name;
    if (n.op === 'constant') return `const[${n.shape}]`;
    return exe.kernels.find((k) => k.root === id)?.name ?? `%${id}`;
  };
  return {
    example: name,
    backend: exe.backend,
    backendReason: exe.backendReason,
    kernels: exe.kernels.length,
    primitives: g.nodes.filter((n) => n.op !== 'input' && n.op !== 'constant').length,
    unfusedKernels: unfused.kernels.length,
    buffers: exe.memory.buffers,
    bytes: exe.memory.plannedBytes,
    naiveBytes: exe.memory.naiveBytes,
    kernelList: exe.kernels.map((k) => ({ index: k.index, name: k.name, shape: k.shape, fused: k.fusedOps, inputs: k.source.args.map(label), source: k.source.source })),
  };
};

export const printInspect = (r: InspectReport, showSource: boolean): void => {
  console.log(`${r.example}: ${examples[r.example].describe}`);
  console.log(`backend: ${r.backend} (${r.backendReason})`);
  for (const k of r.kernelList) {
    console.log(`\n${k.name}  out [${k.shape.join(',')}]  fuses ${k.fused.length}: ${k.fused.join(' ')}`);
    console.log(`  reads: ${k.inputs.join(', ') || '(nothing)'}`);
    if (showSource) console.log(k.source.replace(/^/gm, '  | '));
  }
  console.log(`\n${r.kernels} kernels for ${r.primitives} primitives (unfused: ${r.unfusedKernels} kernels, ${(r.kernels / r.unfusedKernels).toFixed(2)}x)`);
  console.log(`memory plan: ${r.buffers} buffers, ${(r.bytes / 1e6).toFixed(2)} MB with reuse vs ${(r.naiveBytes / 1e6).toFixed(2)} MB for one buffer per node`);
};
