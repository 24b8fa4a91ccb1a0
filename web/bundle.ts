// The browser bundle: esbuild's JS API over the same library sources Node runs (no fork). The few Node built-ins
// that library modules import are mapped to web/shims/node.ts, whose pure helpers work and whose file-system calls
// throw a clear error; gpu.js resolves to its browser build through its package.json "browser" field.
import { build, type Plugin } from 'esbuild';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));
const shim = fileURLToPath(new URL('./shims/node.ts', import.meta.url));

/** `node:fs`, `fs`, `node:os`, `node:module`, ... -> web/shims/node.ts. */
export const nodeBuiltinsPlugin: Plugin = {
  name: 'fusediff-node-builtins',
  setup(b) {
    b.onResolve({ filter: /^(node:)?(fs|os|url|crypto|path|module)$/ }, () => ({ path: shim }));
  },
};

export const version = (): string => String(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);

export interface BundleOptions {
  /** entry module, relative to the repository root (default web/main.ts) */
  entry?: string;
  minify?: boolean;
}

/** Bundles one entry for the browser (ES module, ES2022) in memory; returns the JS text. */
export const bundle = async ({ entry = 'web/main.ts', minify = false }: BundleOptions = {}): Promise<string> => {
  const result = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify,
    sourcemap: 'inline',
    logLevel: 'silent',
    plugins: [nodeBuiltinsPlugin],
    define: { __FUSEDIFF_VERSION__: JSON.stringify(version()) },
  });
  return result.outputFiles[0].text;
};
