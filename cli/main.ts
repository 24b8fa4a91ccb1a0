// The `fusediff` command line.
import { Command, InvalidArgumentError } from 'commander';
import { demo } from './demo.ts';
import { gradcheck } from './gradcheck.ts';
import { examples, inspect, printInspect } from './inspect.ts';
import type { BackendRequest } from '../compiler/runtime/backends.ts';

const integer = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${v}'`);
  return n;
};

const program = new Command('fusediff').description('typed tensor functions, reverse-mode autodiff and gradient checks for diffusion training');

program
  .command('gradcheck')
  .description('run the property-based gradient suite: every primitive and random graphs against finite differences')
  .option('--json', 'print one JSON report', false)
  .option('--runs <n>', 'random cases per primitive', integer('--runs'), 100)
  .option('--seed <s>', 'fast-check seed', integer('--seed'), 1)
  .option('--only <names...>', 'only these primitives (and "graphs")')
  .action((o: { json: boolean; runs: number; seed: number; only?: string[] }) => {
    process.exitCode = gradcheck(o);
  });

program
  .command('demo')
  .description('trace a small denoiser, take its gradient, check it and fit it for a few steps on the interpreter')
  .option('--steps <n>', 'gradient steps', integer('--steps'), 200)
  .action((o: { steps: number }) => {
    process.exitCode = demo(o);
  });

program
  .command('inspect')
  .description(`show the fused kernels of a compiled example step (${Object.keys(examples).join(', ')})`)
  .argument('<example>', 'example name')
  .option('--json', 'print one JSON report', false)
  .option('--source', 'print each kernel\'s generated source', false)
  .option('--backend <name>', 'cpu, webasm, headlessgl, webgl2 or auto', 'auto')
  .action((name: string, o: { json: boolean; source: boolean; backend: BackendRequest }) => {
    const r = inspect(name, o.backend);
    if (o.json) console.log(JSON.stringify(r));
    else printInspect(r, o.source);
  });

await program.parseAsync(process.argv);
