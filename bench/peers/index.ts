// Every peer, by name, for a harness that runs fusediff and the peers side by side in one process.
import { jaxjsMatmul, jaxjsMlp } from './jaxjs.ts';
import { tfjsMatmul, tfjsMlp } from './tfjs.ts';
import type { MatmulPeer, PeerSystem } from './types.ts';

export type { MatmulPeer, PeerSystem } from './types.ts';
export * as workload from '../../workloads/reference.ts';

/** Short stable ids, e.g. for `--only` filters and JSON rows. */
export const PEER_IDS = ['tfjs-wasm', 'tfjs-cpu', 'jaxjs-wasm'] as const;
export type PeerId = (typeof PEER_IDS)[number];

/** A fresh (not yet set up) MLP-step peer. */
export const mlpPeer = (id: PeerId): PeerSystem =>
  id === 'tfjs-wasm' ? tfjsMlp('wasm') : id === 'tfjs-cpu' ? tfjsMlp('cpu') : jaxjsMlp();

/** A fresh (not yet set up) matmul peer. */
export const matmulPeer = (id: PeerId): MatmulPeer =>
  id === 'tfjs-wasm' ? tfjsMatmul('wasm') : id === 'tfjs-cpu' ? tfjsMatmul('cpu') : jaxjsMatmul();
