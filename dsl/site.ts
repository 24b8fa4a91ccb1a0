// Finds the user's call site: the first stack frame outside the library's own core/, dsl/ and compiler/ folders.
import { fileURLToPath } from 'node:url';

const libraryDirs = ['../core/', '../dsl/', '../compiler/'].map((rel) => {
  try {
    return fileURLToPath(new URL(rel, import.meta.url));
  } catch {
    return new URL(rel, import.meta.url).href; // in a browser bundle, frames carry URLs
  }
});

const frameLocation = (line: string): string | undefined => {
  const m = /\(?((?:file:\/\/|\/|[A-Za-z]:\\|https?:\/\/)[^()\s]+:\d+:\d+)\)?\s*$/.exec(line.trim());
  return m?.[1];
};

export const callSite = (): string | undefined => {
  const saved = Error.stackTraceLimit;
  Error.stackTraceLimit = 40;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = saved;
  for (const line of stack.split('\n').slice(1)) {
    const loc = frameLocation(line);
    if (!loc || loc.startsWith('node:')) continue;
    const path = loc.startsWith('file://') ? fileURLToPath(loc.replace(/:\d+:\d+$/, '')) + loc.match(/:\d+:\d+$/)![0] : loc;
    if (libraryDirs.some((d) => path.startsWith(d)) || path.includes('/node_modules/')) continue;
    return path;
  }
  return undefined;
};
