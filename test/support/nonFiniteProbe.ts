// What a gpu.js backend itself does with NaN and infinities, below fusediff's code generator: small kernels over
// the inputs [NaN, Infinity, -Infinity, 1] (a second input holds a run-time 0). The rows are the operations whose GL
// behaviour docs/numerics.md reports; scripts/probe-loop-limit.ts --nonfinite prints the table.
import { GPU } from 'gpu.js';
import type { ProbeMode } from './loopProbe.ts';

export const nonFiniteInputs = [NaN, Infinity, -Infinity, 1] as const;

const probes: Record<string, string> = {
  'x (copy)': 'return a[this.thread.x];',
  'x + 0': 'return a[this.thread.x] + 0.0;',
  'x * 0.0 (literal)': 'return a[this.thread.x] * 0.0;',
  'x * z (z = 0 at run time)': 'return a[this.thread.x] * b[0];',
  'x - x': 'const v = a[this.thread.x]; return v - v;',
  'max(x, 0)': 'return Math.max(a[this.thread.x], 0.0);',
  'min(x, 0)': 'return Math.min(a[this.thread.x], 0.0);',
  'x > 0 ? x : 0': 'const v = a[this.thread.x]; return v > 0.0 ? v : 0.0;',
  'x != x': 'const v = a[this.thread.x]; return v != v ? 1.0 : 0.0;',
  'tanh(x)': 'return Math.tanh(a[this.thread.x]);',
  'exp(x)': 'return Math.exp(a[this.thread.x]);',
  '1 / z (z = 0 at run time)': 'return 1.0 / b[0];',
};

/** Each probe's four outputs, as strings (NaN, Infinity, -Infinity, numbers). */
export const probeNonFinite = async (mode: ProbeMode): Promise<Record<string, string[]>> => {
  const gpu = new GPU({ mode });
  try {
    const a = Float32Array.from(nonFiniteInputs);
    const z = Float32Array.of(0, 0);
    const out: Record<string, string[]> = {};
    for (const [name, body] of Object.entries(probes)) {
      const k = gpu.createKernel(new Function('a', 'b', body) as never, { output: [4], precision: 'single' } as never);
      out[name] = Array.from(k(a as never, z as never) as unknown as Float32Array, String);
    }
    return out;
  } finally {
    await gpu.destroy();
  }
};

export const describeNonFinite = (mode: string, table: Record<string, string[]>): string =>
  [`${mode}: x = [${nonFiniteInputs.join(', ')}]`, ...Object.entries(table).map(([k, v]) => `  ${k.padEnd(26)} ${v.join(', ')}`)].join(
    '\n',
  );
