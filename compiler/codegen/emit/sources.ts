// Sources: inputs and constants are buffers (or literals) by the time codegen runs; random is computed from its
// seed, the step counter and the output index by the counter-based generator of core/rng.ts.
import type { OpsIn } from '../../../core/ir.ts';
import { randomBase, rngEntryPoint } from '../../../core/rng.ts';
import { lit } from '../emitter.ts';
import type { Emit, EmitTable } from './types.ts';

const materialised: Emit<'input' | 'constant'> = (_c, n) => {
  throw new Error(`codegen: ${n.op} %${n.id} must be materialised`);
};

export const sourceEmitters: EmitTable<OpsIn<'source'>> = {
  input: materialised,
  constant: materialised,
  random: (c, n, idx) =>
    `${rngEntryPoint}(${lit(randomBase(n.attrs.seed, n.attrs.stream))}, ${c.value(n.inputs[0], { flat: '0.0' })}, ${c.flatOf(idx, n.shape)}, ${n.attrs.dist === 'normal' ? '1.0' : '0.0'})`,
};
