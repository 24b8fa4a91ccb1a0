// The native reference of `npm run bench`: PyTorch on the CPU, in a child process (bench/peers/pytorch.py), on the
// same workloads as the rest of the bench (the reference MLP step, square matmuls, the reference conv, the UNet MSE
// step), f32, once with one thread and once with every core. Optional: when no python3 here imports torch, the bench
// says so and has no PyTorch rows; nothing else (npm test above all) needs it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDenoiser } from '../../models/index.ts';
import { spCostCases } from '../fusediff/spCost.ts';
import * as W from '../../workloads/reference.ts';

/** What the Python script is told: the workloads' sizes and configurations, from the TypeScript definitions. */
export interface PytorchSpec {
  mlp: { batch: number; pointDim: number; embDim: number; tSteps: number; layerSizes: readonly number[]; adam: typeof W.ADAM };
  matmul: readonly number[];
  conv: W.ConvWorkload;
  unet: { batch: number; tSteps: number; lr: number; config: Record<string, unknown> };
}

/** One timing of the script: the median over rounds (what the rows use), the mean and the fastest, in ms per run. */
export interface PytorchTiming {
  medianMs: number;
  meanMs: number;
  minMs: number;
  rounds: number;
  runsPerRound: number;
}

/** What one run of the script printed (one thread count). */
export interface PytorchRun {
  available: true;
  python: string;
  torch: string;
  /** torch.get_num_threads() */
  threads: number;
  /** OpenBLAS's own thread count, set to the same (PyTorch's set_num_threads does not reach a generic BLAS); null if not OpenBLAS */
  blasThreads: number | null;
  /** e.g. 'OpenBLAS 0.3.21 (Cooperlake kernels)' */
  blas: string;
  blasInfo: { libraries: string[]; build: Record<string, string>; mkl: boolean; mkldnn: boolean; openmp: boolean };
  mlp: PytorchTiming & { samplesPerSec: number; params: number; probeLoss: number | null; loss: number };
  matmul: (PytorchTiming & { n: number; gflops: number })[];
  conv: PytorchTiming & { gflops: number; convBackend: string | null };
  unet: PytorchTiming & { params: number; batch: number; loss: number };
  /** the machine's 1-minute load average when the run started (set here, not by the script): other work on the cores
   * shows here, and hurts the all-threads run most, since OpenMP's threads wait for each other at every op */
  loadAverage1m?: number;
}

/** The bench's PyTorch section: the runs (1 thread, all threads) and the checks that the workloads are the same. */
export type PytorchResult =
  | {
      available: true;
      python: string;
      torch: string;
      blas: string;
      runs: PytorchRun[];
      checks: {
        /** the MLP's loss on the probe batch from the workload's initial parameters, against the float64 reference */
        mlpProbeLoss: number | null;
        mlpReferenceLoss: number;
        mlpSameFunction: boolean;
        mlpParams: [pytorch: number, fusediff: number];
        unetParams: [pytorch: number, fusediff: number];
        sameParamCounts: boolean;
      };
    }
  | { available: false; reason: string };

/** The Python script, next to this file in a checkout (an installed package does not ship it). */
export const PYTORCH_SCRIPT = new URL('./pytorch.py', import.meta.url).pathname;

/**
 * The interpreters to try, in order: FUSEDIFF_PYTHON alone when set; else python3 on PATH, then /usr/bin/python3
 * (Debian's python3-torch installs for the system Python, which a pyenv or venv python3 on PATH hides).
 */
export const pythonCandidates = (env: NodeJS.ProcessEnv = process.env): string[] =>
  env.FUSEDIFF_PYTHON ? [env.FUSEDIFF_PYTHON] : ['python3', '/usr/bin/python3'];

/** The first candidate that imports torch, with its version, or why none does. */
export const findPytorch = (candidates: readonly string[] = pythonCandidates()): { python: string; torch: string } | { reason: string } => {
  const why: string[] = [];
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 120_000 });
    if (r.status === 0 && r.stdout.trim() !== '') return { python, torch: r.stdout.trim().split('\n').pop()! };
    const err = r.error ? r.error.message : (r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`);
    why.push(`${python}: ${err || `exit ${r.status}`}`);
  }
  return { reason: `PyTorch not available (python3 -c "import torch" failed): ${why.join('; ')}` };
};

/** The spec of bench/run.ts's workloads; matmul at the sizes the bench runs. */
export const pytorchSpec = (matmulSizes: readonly number[]): PytorchSpec => {
  const unet = spCostCases.find((c) => c.name === 'Unet')!;
  const { kind: _kind, ...config } = createDenoiser(unet.model).config;
  return {
    mlp: { batch: W.BATCH, pointDim: W.POINT_DIM, embDim: W.EMB_DIM, tSteps: W.T_STEPS, layerSizes: W.LAYER_SIZES, adam: W.ADAM },
    matmul: matmulSizes,
    conv: W.CONV,
    // spCost.ts: Adam at lr 1e-4, cosine schedule (T = 1000) rescaled to zero terminal SNR, v-prediction
    unet: { batch: unet.batch, tSteps: 1000, lr: 1e-4, config },
  };
};

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isTiming = (x: unknown): boolean => {
  const t = x as Partial<PytorchTiming> | undefined;
  return !!t && isNum(t.medianMs) && isNum(t.meanMs) && isNum(t.minMs) && t.medianMs > 0;
};

/**
 * The script's stdout (its last non-empty line is one JSON object) as a run, or { available: false } with the
 * script's reason; anything else throws, naming what is missing.
 */
export const parsePytorchOutput = (stdout: string): PytorchRun | { available: false; reason: string } => {
  const line = stdout.trim().split('\n').pop() ?? '';
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new Error(`bench/peers/pytorch.py printed no JSON: ${JSON.stringify(line.slice(0, 200))}`);
  }
  if (o.available === false) return { available: false, reason: `PyTorch not available: ${String(o.reason)}` };
  const r = o as unknown as PytorchRun;
  const missing = [
    r.available !== true && 'available',
    typeof r.torch !== 'string' && 'torch',
    typeof r.blas !== 'string' && 'blas',
    !isNum(r.threads) && 'threads',
    !(isTiming(r.mlp) && isNum(r.mlp.samplesPerSec)) && 'mlp',
    !(Array.isArray(r.matmul) && r.matmul.every((m) => isTiming(m) && isNum(m.n) && isNum(m.gflops))) && 'matmul',
    !(isTiming(r.conv) && isNum(r.conv.gflops)) && 'conv',
    !isTiming(r.unet) && 'unet',
  ].filter((x): x is string => x !== false);
  if (missing.length > 0) throw new Error(`bench/peers/pytorch.py: missing or malformed ${missing.join(', ')} in ${line.slice(0, 200)}`);
  return r;
};

export interface PytorchOptions {
  quick: boolean;
  matmulSizes: readonly number[];
  /** thread counts, one run each (default 1 and every core) */
  threads?: readonly number[];
  /** interpreters to try (default pythonCandidates()) */
  candidates?: readonly string[];
  /** progress lines (default console.log) */
  log?: (line: string) => void;
}

/** Runs the script once per thread count, in turn (nothing else of the bench runs meanwhile). */
export const runPytorch = (o: PytorchOptions): PytorchResult => {
  const log = o.log ?? console.log;
  if (!existsSync(PYTORCH_SCRIPT)) return { available: false, reason: `PyTorch reference skipped: ${PYTORCH_SCRIPT} is not here` };
  const found = findPytorch(o.candidates);
  if ('reason' in found) return { available: false, reason: found.reason };
  const cores = os.availableParallelism();
  const threads = o.threads ?? [...new Set([1, cores])];
  const spec = pytorchSpec(o.matmulSizes);
  // the probe: the workload's initial parameters, its data set and a fixed batch, so the MLP is checked to be the same function
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fusediff-pytorch-'));
  const probeFile = path.join(dir, 'probe.json');
  const layers = W.initParams();
  const x0 = W.eightGaussians();
  const { eps, t } = W.probeNoise();
  writeFileSync(
    probeFile,
    JSON.stringify({
      layers: layers.map((l) => ({ inDim: l.inDim, outDim: l.outDim, w: [...l.w], b: [...l.b] })),
      x0: [...x0],
      eps: [...eps],
      t: [...t],
    }),
  );
  const runs: PytorchRun[] = [];
  try {
    for (const n of threads) {
      const loadAverage1m = os.loadavg()[0];
      log(`PyTorch ${found.torch} (${found.python}), ${n} thread${n === 1 ? '' : 's'} (load average ${loadAverage1m.toFixed(2)})...`);
      const counts = String(n);
      const r = spawnSync(
        found.python,
        [PYTORCH_SCRIPT, '--threads', counts, '--spec', JSON.stringify(spec), '--probe', probeFile, ...(o.quick ? ['--quick'] : [])],
        {
          encoding: 'utf8',
          timeout: 600_000,
          maxBuffer: 16 * 2 ** 20,
          // OpenMP (PyTorch's own kernels, oneDNN) and the BLAS read their thread counts when they load
          env: { ...process.env, OMP_NUM_THREADS: counts, OPENBLAS_NUM_THREADS: counts, MKL_NUM_THREADS: counts },
        },
      );
      if (r.status !== 0)
        return {
          available: false,
          reason: `bench/peers/pytorch.py failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr.trim().slice(-500)}`,
        };
      const run = parsePytorchOutput(r.stdout);
      if (!run.available) return run;
      runs.push({ ...run, loadAverage1m });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const reference = W.referenceLoss(layers, x0, eps, t);
  const probeLoss = runs[0].mlp.probeLoss;
  const unet = spCostCases.find((c) => c.name === 'Unet')!;
  const fusediffUnetParams = createDenoiser(unet.model)
    .paramShapes()
    .reduce((s, [, shape]) => s + shape.reduce((a, b) => a * b, 1), 0);
  const mlpParams: [number, number] = [runs[0].mlp.params, W.paramCount()];
  const unetParams: [number, number] = [runs[0].unet.params, fusediffUnetParams];
  return {
    available: true,
    python: found.python,
    torch: runs[0].torch,
    blas: runs[0].blas,
    runs,
    checks: {
      mlpProbeLoss: probeLoss,
      mlpReferenceLoss: reference,
      mlpSameFunction: probeLoss !== null && Math.abs(probeLoss - reference) <= 1e-4 * Math.max(1, Math.abs(reference)),
      mlpParams,
      unetParams,
      sameParamCounts: mlpParams[0] === mlpParams[1] && unetParams[0] === unetParams[1],
    },
  };
};

/** What a row's backend column says: 'CPU, 1 thread (OpenBLAS 0.3.21 (Cooperlake kernels))', with the conv's library on conv rows. */
export const pytorchBackend = (r: PytorchRun, conv = false): string => {
  const convBackend = conv && r.conv.convBackend ? `; conv: ${r.conv.convBackend.replace(/^_?ConvBackend\./, '')}` : '';
  return `CPU, ${r.threads} thread${r.threads === 1 ? '' : 's'} (${r.blas}${convBackend})`;
};
