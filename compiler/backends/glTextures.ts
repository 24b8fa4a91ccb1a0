// Counts the textures alive in a GL context. gpu.js creates textures in several places, some past its own caches
// (output textures, clones for immutable kernels), so the count comes from the context itself: createTexture and
// deleteTexture are wrapped on this one context object.
interface TextureCalls {
  createTexture(): object | null;
  deleteTexture(texture: object | null): void;
}

export interface TextureCount {
  live(): number;
}

export const countTextures = (context: object): TextureCount => {
  const gl = context as TextureCalls;
  const live = new Set<object>();
  const create = gl.createTexture.bind(gl);
  const remove = gl.deleteTexture.bind(gl);
  gl.createTexture = () => {
    const t = create();
    if (t) live.add(t);
    return t;
  };
  gl.deleteTexture = (t) => {
    if (t) live.delete(t);
    remove(t);
  };
  return { live: () => live.size };
};
