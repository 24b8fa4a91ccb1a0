// A run's `into` option (RunDeviceOptions): the caller's own arrays that receive some outputs, checked before the
// plan runs, so a wrong array costs no run and leaves no state half-written.
import { fmt, size, type Shape } from '../core/shape.ts';
import type { DeviceBuffer } from './backend.ts';

export type Into = Readonly<Record<string, Float32Array>>;

/**
 * Throws unless every array of `into` is a Float32Array of exactly the size of an output the run returns.
 * `outputs`: name -> shape of each returned output; `kept`: outputs the plan keeps in its memory (feedback).
 */
export const checkInto = (into: Into | undefined, outputs: ReadonlyMap<string, Shape>, kept: ReadonlySet<string> = new Set()): void => {
  if (into === undefined) return;
  for (const [name, array] of Object.entries(into)) {
    if (kept.has(name))
      throw new Error(`run: into.${name}: output '${name}' is fed back and stays in the plan (adoptFeedback); it is not returned`);
    const shape = outputs.get(name);
    if (shape === undefined)
      throw new Error(`run: into.${name}: the plan has no output '${name}'; outputs: ${[...outputs.keys()].join(', ')}`);
    if (!(array instanceof Float32Array))
      throw new Error(`run: into.${name} must be a Float32Array of ${size(shape)} values (output '${name}' is ${fmt(shape)})`);
    if (array.length !== size(shape))
      throw new Error(`run: into.${name} has ${array.length} values, output '${name}' is ${fmt(shape)} (${size(shape)} values)`);
  }
};

/**
 * For backends whose outputs come back as buffers of their own: copies each output named in `into` into the
 * caller's array (read: the buffer's values; free: releases the buffer) and returns the outputs with those arrays in
 * their place.
 */
export const deliverInto = (
  out: Record<string, DeviceBuffer>,
  into: Into | undefined,
  read: (name: string, buffer: DeviceBuffer) => Float32Array,
  free: (buffer: DeviceBuffer) => void = () => {},
): Record<string, DeviceBuffer> => {
  if (into === undefined) return out;
  for (const [name, array] of Object.entries(into)) {
    const buffer = out[name];
    array.set(read(name, buffer));
    if (buffer !== array) free(buffer);
    out[name] = array;
  }
  return out;
};
