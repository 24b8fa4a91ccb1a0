// TensorFlow.js's webgpu backend (@tensorflow/tfjs-backend-webgpu, the version of the other tfjs packages) as a peer
// of the WebGPU bench: the reference MLP step, a square matmul and the forward conv, with tfjs.ts's classes.
// In Node it runs on the adapter of the `webgpu` package (Dawn), as jax-js does (jaxjs.ts): the package's GPU object
// becomes navigator.gpu before the backend's module loads, because that module registers 'webgpu' only where
// navigator.gpu exists when it is imported. In a page it uses the page's navigator.gpu.
// The backend's defaults stay as a user gets them: dispatches batched into one pass and submitted every 15
// (WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE), ops on small tensors still on the host forwarded to the cpu backend
// (WEBGPU_CPU_FORWARD).
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { TfjsConv, TfjsMatmul, TfjsMlp, useTfjsBackend, type TfjsDriver } from './tfjs.ts';
import type { ConvPeer, MatmulPeer, PeerSystem } from './types.ts';

/** Holds Dawn's GPU object while the backend lives: if the GC collects it, Dawn aborts the process. */
let dawnForTfjs: unknown;
let registering: Promise<void> | undefined;

const isNode = (): boolean => typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';

/** Gives Node a navigator.gpu (the webgpu package's, once) and imports the backend so that it registers. */
const register = (): Promise<void> =>
  (registering ??= (async () => {
    const g = globalThis as Record<string, unknown>;
    g.navigator ??= { userAgent: `Node.js/${process.version}`, hardwareConcurrency: 1 };
    const nav = g.navigator as { gpu?: unknown };
    if (!nav.gpu && isNode()) {
      const name = 'webgpu'; // a variable specifier: the page's bundle must not resolve the Node-only package
      const { create, globals } = (await import(/* @vite-ignore */ name)) as { create(f: string[]): unknown; globals: object };
      Object.assign(globalThis, globals); // GPUBufferUsage, GPUMapMode: the backend reads them as globals
      nav.gpu = dawnForTfjs = create([]);
    }
    if (!nav.gpu) throw new Error('TensorFlow.js webgpu: no navigator.gpu here');
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!tf.findBackendFactory('webgpu')) throw new Error('TensorFlow.js webgpu: the backend did not register (no navigator.gpu?)');
  })());

const backend = (): WebGPUBackend => tf.backend() as WebGPUBackend;

/** The adapter the backend asked for, as it keeps it (its AdapterInfo holds the vendor and architecture, privately). */
const adapterWords = (): string => {
  const info = backend().adapterInfo as unknown as { vendor?: string; architecture?: string } | undefined;
  return [info?.vendor, info?.architecture].filter((s) => !!s).join(' ') || 'an unnamed adapter';
};

/** The webgpu driver for tfjs.ts's peer classes. */
export const tfjsWebgpuDriver: TfjsDriver = {
  name: 'webgpu',
  use: async () => {
    await register();
    await useTfjsBackend('webgpu');
  },
  // in Node, navigator.gpu is always the webgpu package's (ours, or jax-js's when it ran first: jaxjs.ts sets it too)
  describe: async () => `webgpu (${adapterWords()}${isNode() ? ', Dawn in Node' : ''})`,
  // the product stays on the device, as jax-js's and fusediff's do: submit what the backend batched, wait for the queue
  settle: async () => {
    const b = backend();
    b.ensureCommandEncoderReady(); // submitQueue() finishes the current encoder, so there must be one
    b.endComputePassEncoder();
    b.submitQueue();
    await b.device.queue.onSubmittedWorkDone();
  },
};

/**
 * For the end of a process (a test's after()): removes the backend and destroys its device, which tfjs's dispose()
 * keeps, and while a device exists Dawn keeps a Node process running. The backend cannot be used again afterwards:
 * removeBackend forgets its factory, and its module registers only on first import.
 */
export const releaseTfjsWebgpu = (): void => {
  const b = tf.findBackend('webgpu') as WebGPUBackend | null;
  if (!b) return;
  tf.removeBackend('webgpu'); // disposes it and forgets the factory's instance
  b.device.destroy();
};

/** The reference MLP denoiser step on TensorFlow.js webgpu (tf.train.adam via optimizer.minimize, the loss read back). */
export const tfjsWebgpuMlp = (): PeerSystem => new TfjsMlp(tfjsWebgpuDriver);
/** An n x n x n f32 tf.matMul on TensorFlow.js webgpu, operands and product resident on the device. */
export const tfjsWebgpuMatmul = (): MatmulPeer => new TfjsMatmul(tfjsWebgpuDriver);
/** One forward tf.conv2d (NHWC, 'same') on TensorFlow.js webgpu, read back. */
export const tfjsWebgpuConv = (): ConvPeer => new TfjsConv(tfjsWebgpuDriver);
