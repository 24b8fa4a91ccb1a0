// Browser stand-ins for the two Node built-ins the peers reach for (bench/page/run.ts maps `node:module` and
// `node:fs/promises` here; the library's own built-ins go to web/shims/node.ts, as in the playground's bundle):
// bench/peers/tfjs.ts finds TF.js's .wasm files and bench/peers/jaxjs.ts reads jax-js's package.json with them.
// Both answer from the page's server: `require.resolve` from the table the runner resolved in Node at bundle time
// (URL paths that the server maps back to node_modules), `readFile` by fetching such a path.
declare const __BENCH_PAGE_RESOLVED__: Record<string, string>;

/** node:module's createRequire: `resolve` only, and only for the ids the runner resolved. */
export const createRequire = (): { resolve(id: string): string } => ({
  resolve: (id: string) => {
    const path = __BENCH_PAGE_RESOLVED__[id];
    if (path === undefined) throw new Error(`bench page: '${id}' was not resolved at bundle time (bench/page/run.ts RESOLVE)`);
    return path;
  },
});

/** node:fs/promises's readFile of a path createRequire gave: fetched from the page's server, as text. */
export const readFile = async (path: string): Promise<string> => {
  const res = await fetch(path);
  if (!res.ok) throw new Error(`bench page: ${path}: HTTP ${res.status}`);
  return res.text();
};

export default { createRequire, readFile };
