// Atomic file writes for everything the project saves (checkpoints, configs, loss logs, reports, pictures): a
// sibling temporary file, fsync, rename, so a reader sees the old file or the new one, never a part.
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';

/** A file could not be written; the previous file at that path, if any, is unchanged. */
export class WriteError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WriteError';
  }
}

/** Writes bytes to `path` atomically; on failure the temporary is removed and a WriteError names the path. */
export const writeFileAtomic = (path: string, bytes: Uint8Array): void => {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', 0o644);
    for (let off = 0; off < bytes.length;) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already failing */
      }
    }
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      /* the directory may be gone */
    }
    throw new WriteError(`could not write ${path}: ${(e as Error).message} (any previous file at that path is unchanged)`, { cause: e });
  }
  // Persist the rename itself; not every platform can fsync a directory, and the data is already safe.
  try {
    const dfd = fs.openSync(dirname(path), 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    /* best effort */
  }
};
