#!/usr/bin/env node
// The CLI entry. In a checkout the TypeScript sources run through tsx (no build step to forget); an installed
// package runs the JavaScript it was built to (dist/, made by `npm run build` before packing).
import { existsSync } from 'node:fs';

const source = new URL('../cli/main.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else await import('../dist/cli/main.js');
