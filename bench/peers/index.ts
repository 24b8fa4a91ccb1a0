// Every peer, by name, for a harness that runs fusediff and the peers side by side in one process.
import { jaxjsConv, jaxjsMatmul, jaxjsMlp } from './jaxjs.ts';
import { tfjsConv, tfjsMatmul, tfjsMlp } from './tfjs.ts';
import type { ConvPeer, MatmulPeer, PeerSystem } from './types.ts';

export type { ConvPeer, MatmulPeer, PeerSystem } from './types.ts';
export * as workload from '../../workloads/reference.ts';

/** Short stable ids, e.g. for `--only` filters and JSON rows. */
export const PEER_IDS = ['tfjs-wasm', 'tfjs-cpu', 'jaxjs-wasm'] as const;
export type PeerId = (typeof PEER_IDS)[number];

/** A fresh (not yet set up) MLP-step peer. */
export const mlpPeer = (id: PeerId): PeerSystem => (id === 'tfjs-wasm' ? tfjsMlp('wasm') : id === 'tfjs-cpu' ? tfjsMlp('cpu') : jaxjsMlp());

/** A fresh (not yet set up) matmul peer. */
export const matmulPeer = (id: PeerId): MatmulPeer =>
  id === 'tfjs-wasm' ? tfjsMatmul('wasm') : id === 'tfjs-cpu' ? tfjsMatmul('cpu') : jaxjsMatmul();

/** The conv table's peers: TF.js wasm and jax-js (jitted and eager); TF.js cpu is left out (no target of the issue). */
export const CONV_PEER_IDS = ['tfjs-wasm', 'jaxjs-wasm', 'jaxjs-wasm-eager'] as const;
export type ConvPeerId = (typeof CONV_PEER_IDS)[number];

/** A fresh (not yet set up) conv peer. */
export const convPeer = (id: ConvPeerId): ConvPeer =>
  id === 'tfjs-wasm' ? tfjsConv('wasm') : jaxjsConv(id === 'jaxjs-wasm' ? 'jit' : 'eager');
