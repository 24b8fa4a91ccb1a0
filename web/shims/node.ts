// Browser stand-ins for the few Node built-ins that library modules import (web/bundle.ts maps `node:fs`,
// `node:os`, `node:url`, `node:crypto` and `node:path` here). Pure helpers work; anything that needs a file
// system throws an error that says so, so a browser code path that reaches for a file fails loudly, not silently.
const unsupported = (name: string) => (): never => {
  throw new Error(
    `${name} is not available in the browser build of fusediff (use the pure byte functions, ` +
      `e.g. encodeCheckpoint/decodeCheckpoint, and a Blob or File)`,
  );
};

// node:fs
export const readFileSync = unsupported('fs.readFileSync');
export const writeFileSync = unsupported('fs.writeFileSync');
export const openSync = unsupported('fs.openSync');
export const writeSync = unsupported('fs.writeSync');
export const fsyncSync = unsupported('fs.fsyncSync');
export const closeSync = unsupported('fs.closeSync');
export const renameSync = unsupported('fs.renameSync');
export const rmSync = unsupported('fs.rmSync');
export const unlinkSync = unsupported('fs.unlinkSync');
export const mkdirSync = unsupported('fs.mkdirSync');
export const existsSync = (): boolean => false;
export const statSync = unsupported('fs.statSync');

// node:os
export const endianness = (): 'LE' | 'BE' => (new Uint8Array(Uint16Array.of(1).buffer)[0] === 1 ? 'LE' : 'BE');

// node:url
export const fileURLToPath = (url: string | URL): string => {
  const u = typeof url === 'string' ? new URL(url) : url;
  if (u.protocol !== 'file:') throw new TypeError(`fileURLToPath: not a file URL: ${u.href}`);
  return decodeURIComponent(u.pathname);
};
export const pathToFileURL = (path: string): URL => new URL(`file://${encodeURI(path)}`);

// node:crypto
export const randomBytes = unsupported('crypto.randomBytes');

// node:path
export const dirname = (p: string): string => p.replace(/\/[^/]*$/, '') || '/';
export const join = (...parts: string[]): string => parts.join('/').replace(/\/+/g, '/');

// node:module (data/mnist.ts finds the mnist package's files with it; there are none in the browser)
export const createRequire = (): ((id: string) => never) => unsupported('require');

const node = {
  readFileSync,
  writeFileSync,
  openSync,
  writeSync,
  fsyncSync,
  closeSync,
  renameSync,
  rmSync,
  unlinkSync,
  mkdirSync,
  existsSync,
  statSync,
  endianness,
  fileURLToPath,
  pathToFileURL,
  randomBytes,
  dirname,
  join,
  createRequire,
};
export default node;
