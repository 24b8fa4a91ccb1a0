// Trees: nested records whose leaves are tensors, host arrays or shapes. Flattened paths ("enc.0.w") name graph inputs.
/** A leaf, or a record of trees; its leaves are named by their dot-joined key path ('enc.0.w'). */
export type Tree<L> = L | { readonly [key: string]: Tree<L> };

/** The [path, leaf] pairs of a tree in key order; `isLeaf` says what a leaf is. A key may not contain '.'. */
export const flatten = <L>(tree: Tree<L>, isLeaf: (x: unknown) => x is L, prefix = ''): [string, L][] => {
  if (isLeaf(tree)) return [[prefix, tree]];
  const out: [string, L][] = [];
  for (const [k, v] of Object.entries(tree as Record<string, Tree<L>>)) {
    if (k.includes('.')) throw new Error(`tree key '${k}' contains '.', which separates path segments`);
    out.push(...flatten(v, isLeaf, prefix ? `${prefix}.${k}` : k));
  }
  return out;
};

const PROTOTYPE_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

/** Builds the tree of dot-joined paths (the inverse of `flatten`); a path segment that would reach a prototype is refused. */
export const unflatten = <L>(entries: Iterable<readonly [string, L]>): Tree<L> => {
  const root: Record<string, unknown> = {};
  for (const [path, leaf] of entries) {
    const keys = path.split('.');
    // a path is data (a tensor name from a file, say): it must build fields, never walk into a prototype
    const bad = keys.find((k) => PROTOTYPE_KEYS.has(k));
    if (bad !== undefined) throw new Error(`tree path '${path}' has the segment '${bad}', which would reach an object's prototype`);
    let node = root;
    keys.slice(0, -1).forEach((k) => {
      if (!Object.hasOwn(node, k)) node[k] = {};
      node = node[k] as Record<string, unknown>;
    });
    node[keys[keys.length - 1]] = leaf;
  }
  return root as Tree<L>;
};

/** The tree of the same structure with `f(leaf, path)` at every leaf. */
export const mapTree = <A, B>(tree: Tree<A>, isLeaf: (x: unknown) => x is A, f: (leaf: A, path: string) => B): Tree<B> =>
  unflatten(flatten(tree, isLeaf).map(([p, l]) => [p, f(l, p)] as const));
