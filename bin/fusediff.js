#!/usr/bin/env node
// The CLI entry: TypeScript sources run through tsx (esbuild), so there is no build step to forget.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
