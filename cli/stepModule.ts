// A step module of the user's (docs/your-step.md), loaded for `fusediff inspect <module>` and `fusediff bench <module>`:
// .js and .mjs through Node's own import, TypeScript through tsx's loader hooks, registered on the first .ts module.
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BackendRequest } from '../compiler/index.ts';
import { benchStep, buildStep, disposeStep, formatStepBench, stepSourceOf, type StepBench, type StepSource } from '../train/inspectStep.ts';

/** An argument that names a file rather than a built-in example: it has a folder or a script's extension. */
export const isModulePath = (arg: string): boolean => /[\\/]/.test(arg) || /\.[cm]?[jt]sx?$/.test(arg);

let tsxRegistered: Promise<void> | undefined;
/** tsx's ESM hooks, and its CommonJS ones for a .ts file outside an ESM package (imported lazily, once). */
const registerTsx = (): Promise<void> =>
  (tsxRegistered ??= (async () => {
    const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
    esm.register();
    cjs.register();
  })());

export interface StepModule {
  source: StepSource;
  /** the file's name without its extension: the step's name in the tables */
  name: string;
  /** the path as given */
  path: string;
}

/** Imports a step module (path relative to the working directory) and returns what it exports as a step source. */
export const loadStepModule = async (path: string, backend?: BackendRequest): Promise<StepModule> => {
  const file = resolve(process.cwd(), path);
  if (!existsSync(file)) throw new Error(`${path}: no such step module (${file})`);
  if (/\.[cm]?tsx?$/.test(file)) await registerTsx();
  const source = stepSourceOf((await import(pathToFileURL(file).href)) as Record<string, unknown>, path);
  if (typeof source !== 'function' && backend !== undefined && backend !== 'auto')
    console.error(
      `note: ${path} exports a compiled step, so --backend ${backend} does not apply to it; ` +
        'export a function of { backend, fusion, profile } instead (docs/your-step.md)',
    );
  return { source, name: basename(file).replace(/\.[^.]+$/, ''), path };
};

export interface BenchModuleFlags {
  quick: boolean;
  backend: BackendRequest;
  json?: boolean;
}

/** `fusediff bench <module>`: the module's step benchmarked in this process; prints the table (or JSON). */
export const benchModuleCommand = async (path: string, o: BenchModuleFlags): Promise<number> => {
  const m = await loadStepModule(path, o.backend);
  const spec = await buildStep(m.source, { backend: o.backend, fusion: 'fused', profile: false }, path);
  let r: StepBench;
  try {
    r = await benchStep(spec, { quick: o.quick, name: spec.name ?? m.name });
  } finally {
    if (typeof m.source === 'function') disposeStep(spec);
  }
  if (o.json) console.log(JSON.stringify(r));
  else {
    if (spec.describe !== undefined) console.log(`${r.name}: ${spec.describe}`);
    console.log(formatStepBench(r));
  }
  return 0;
};
