// The playground's server: bundles the browser entry (web/bundle.ts) and serves it with the page's static files
// over node:http on localhost. Nothing is fetched from anywhere else: the page is self-contained, and its
// Content-Security-Policy says so.
import { createServer, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { bundle } from './bundle.ts';

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

export interface ServeOptions {
  /** 0 picks a free port */
  port?: number;
  host?: string;
  /** URL path -> entry module to bundle (default: /main.js -> web/main.ts) */
  entries?: Record<string, string>;
  /** URL path -> HTML text served as is (default: / -> web/index.html) */
  pages?: Record<string, string>;
  minify?: boolean;
}

export interface Playground {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

const staticFile = (name: string) => readFileSync(new URL(name, import.meta.url));

/** The path of a request's URL, or undefined where it cannot be parsed (`//a:b`, `//[`: new URL throws on them). */
export const pathOf = (url: string | undefined): string | undefined => {
  try {
    return new URL(url ?? '/', 'http://localhost').pathname;
  } catch {
    return undefined;
  }
};

/**
 * The page's Content-Security-Policy, sent with the page and every asset: only this server's scripts, styles and
 * connections, no inline script or style, no plugins, no <base>, never framed. What the page needs beyond 'self':
 * 'unsafe-eval', since core/rng.ts builds its RNG with `new Function`, gpu.js compiles its kernels with
 * `new Function` and vega compiles its expressions with `Function` (without it the page stops at load);
 * 'wasm-unsafe-eval' for the WebAssembly backends' WebAssembly.compile (Chromium lets 'unsafe-eval' cover it too;
 * named so that it keeps working should 'unsafe-eval' go); worker-src blob: for the WebAssembly threads, whose
 * workers start from a blob: URL (compiler/wasm/threads.ts); img-src data: for the page's empty favicon
 * (`<link rel="icon" href="data:,">`, which keeps the browser from asking for /favicon.ico). Each was found by
 * running the page on every backend with it left out (test/browser.test.ts checks that no violation is reported).
 */
export const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval'",
  'worker-src blob:',
  "style-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The policy of the plain-text error answers: they load nothing. */
const errorPolicy = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const respond = (method: string | undefined, res: ServerResponse, file: { type: string; body: Buffer | string }) => {
  // cross-origin isolated (COOP + COEP): the page may share memory with Web Workers, which the wasm backend's
  // threads need; everything it loads is from this server
  res.writeHead(200, {
    'content-type': file.type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'content-security-policy': contentSecurityPolicy,
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-embedder-policy': 'require-corp',
  });
  res.end(method === 'HEAD' ? undefined : file.body);
};

/** Bundles every entry, then listens; resolves once the server accepts connections. */
export const serve = async ({
  port = 8080,
  host = '127.0.0.1',
  entries = { '/main.js': 'web/main.ts' },
  pages,
  minify = false,
}: ServeOptions = {}): Promise<Playground> => {
  const files = new Map<string, { type: string; body: Buffer | string }>();
  for (const [path, entry] of Object.entries(entries)) files.set(path, { type: types['.js'], body: await bundle({ entry, minify }) });
  for (const [path, html] of Object.entries(pages ?? { '/': staticFile('./index.html').toString('utf8') }))
    files.set(path, { type: types['.html'], body: html });
  files.set('/style.css', { type: types['.css'], body: staticFile('./style.css') });
  const server = createServer((req, res) => {
    // every answer: no content sniffing; errors are plain text that never echoes the request
    const plain = (status: number, text: string, headers: Record<string, string> = {}) =>
      res
        .writeHead(status, {
          ...headers,
          'content-type': 'text/plain; charset=utf-8',
          'x-content-type-options': 'nosniff',
          'content-security-policy': errorPolicy,
        })
        .end(text);
    try {
      const path = pathOf(req.url);
      if (path === undefined) return plain(400, 'bad request: the URL cannot be parsed\n');
      if (req.method !== 'GET' && req.method !== 'HEAD') return plain(405, 'method not allowed\n', { allow: 'GET, HEAD' });
      const file = files.get(path === '/index.html' ? '/' : path);
      if (!file) return plain(404, 'not found\n');
      respond(req.method, res, file);
    } catch {
      // a request never takes the server down
      if (!res.headersSent) plain(500, 'internal error\n');
      else res.destroy();
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}/`,
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};
