// What both plan executables (wasm, webgpu) check of a run's given input before copying it into the plan: present
// (unless the plan keeps it resident), the right shape and length, and a host array rather than a GL texture.
import type { Node } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import { fmt, sameShape, size, type Shape } from '../core/shape.ts';
import type { DeviceBuffer } from './backend.ts';

export type GivenInputs = Readonly<Record<string, DeviceBuffer | NDArray | ArrayLike<number>>>;

/** The error for a missing input: the plan's inputs, and the given names that are none of them (a misspelt one, often). */
export const missingInput = (name: string, shape: Shape, given: object, inputs: ReadonlyMap<string, Shape>): string => {
  const unknown = Object.keys(given).filter((k) => !inputs.has(k));
  return (
    `run: missing input '${name}' of shape ${fmt(shape)}; inputs: ${[...inputs.keys()].join(', ')}` +
    (unknown.length ? `; given but no input of the plan: ${unknown.join(', ')}` : '')
  );
};

/**
 * The values given for input node `n`, checked; undefined where none is given and the plan keeps the input resident.
 * `inputs` (name -> shape) names the plan's inputs in the error for a missing one.
 */
export const hostInput = (
  n: Node,
  given: GivenInputs,
  resident: ReadonlySet<string>,
  inputs: ReadonlyMap<string, Shape>,
  backend: string,
): ArrayLike<number> | undefined => {
  const name = n.op === 'input' ? n.attrs.name : '';
  const v = given[name];
  if (v === undefined && resident.has(name)) return undefined; // kept in the plan from the last run
  if (v === undefined) throw new Error(missingInput(name, n.shape, given, inputs));
  if (typeof v === 'object' && v !== null && 'shape' in v && 'data' in v && !sameShape((v as NDArray).shape, n.shape))
    throw new Error(`run: input '${name}' has shape ${fmt((v as NDArray).shape)}, the plan expects ${fmt(n.shape)}`);
  if (!(v instanceof Float32Array) && typeof v === 'object' && v !== null && 'toArray' in v)
    throw new Error(`run: input '${name}' is a GL texture; the ${backend} backend takes host arrays`);
  const data = 'data' in (v as NDArray) && !(v instanceof Float32Array) ? (v as NDArray).data : (v as ArrayLike<number>);
  if (data.length !== size(n.shape))
    throw new Error(`run: input '${name}' has ${data.length} values, the plan expects ${fmt(n.shape)} (${size(n.shape)})`);
  return data;
};
