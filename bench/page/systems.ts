// The page bench's systems, shared by the runner (Node) and the page (bench/page/entry.ts, which must not be imported
// in Node: it wraps the page's Worker on load).
export const SYSTEMS = ['fusediff', 'tfjs', 'jaxjs', 'fusediff-webgpu', 'gpujs-webgpu', 'tfjs-webgpu', 'jaxjs-webgpu'] as const;
export type SystemId = (typeof SYSTEMS)[number];
/** The systems on navigator.gpu: the reference MLP step only (SwiftShader runs a step in about a second). */
export const WEBGPU_SYSTEMS: readonly SystemId[] = ['fusediff-webgpu', 'gpujs-webgpu', 'tfjs-webgpu', 'jaxjs-webgpu'];
