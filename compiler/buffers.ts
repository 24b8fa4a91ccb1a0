// Device buffers outside any backend object: telling a texture from a typed array, and freeing one.
import type { Texture } from 'gpu.js';
import type { DeviceBuffer } from './backend.ts';

export const isTexture = (v: unknown): v is Texture =>
  typeof v === 'object' && v !== null && typeof (v as Texture).toArray === 'function' && !(v instanceof Float32Array);

/** Whether a texture has been deleted (gpu.js marks it; typed arrays never are). */
export const isDeleted = (b: DeviceBuffer): boolean => isTexture(b) && (b as unknown as { _deleted?: boolean })._deleted === true;

/** Frees a texture returned by an immutable kernel (a no-op for typed arrays, which the GC frees). */
export const release = (b: DeviceBuffer): void => {
  if (isTexture(b)) b.delete();
};
