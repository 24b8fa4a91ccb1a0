// Finds the user's call site: the first stack frame outside the library's own core/, dsl/, transforms/ and compiler/ folders.
// No Node import: the DSL runs in browsers and bundles as it is, so file: URLs are turned into paths here.

/** A file: URL as a path ('/a/b c.ts', or 'C:\\a\\b.ts' on Windows); any other URL (a bundle's http:) stays as it is. */
const urlToPath = (url: string): string => {
  if (!url.startsWith('file://')) return url;
  const p = decodeURIComponent(new URL(url).pathname);
  return /^\/[A-Za-z]:\//.test(p) ? p.slice(1).replaceAll('/', '\\') : p;
};

// where this module has no hierarchical URL (an inline module script on about:blank), there are no library folders to skip
const libraryDirs = ['../core/', '../dsl/', '../transforms/', '../compiler/'].flatMap((rel) => {
  try {
    return [urlToPath(new URL(rel, import.meta.url).href)];
  } catch {
    return [];
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
    const path = loc.startsWith('file://') ? urlToPath(loc.replace(/:\d+:\d+$/, '')) + loc.match(/:\d+:\d+$/)![0] : loc;
    if (libraryDirs.some((d) => path.startsWith(d)) || path.includes('/node_modules/')) continue;
    return path;
  }
  return undefined;
};
