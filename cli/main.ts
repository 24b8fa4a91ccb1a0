// The `fusediff` command line.
import { spawnSync } from 'node:child_process';
import { FUSEDIFF_VERSION } from '../storage/checkpoint.ts';
import { Command, InvalidArgumentError } from 'commander';
import { evalCommand, sampleCommand, type SampleFlags } from './sample.ts';
import { curveCommand, type CurveFlags } from './curve.ts';
import { trainClassifierCommand, type TrainClassifierFlags } from './trainClassifier.ts';
import { demo } from './demo.ts';
import { gradcheck } from './gradcheck.ts';
import { examples, inspect, printInspect } from './inspect.ts';
import { prepareWebGPU, shutdownBackends, type BackendRequest } from '../compiler/index.ts';
import { backendOption, number, withRunOptions } from './options.ts';
import { experimentCommand, type ExperimentFlags } from './experiment.ts';
import { finetuneCommand, trainCommand, type FinetuneFlags, type TrainFlags } from './train.ts';

const integer = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${v}'`);
  return n;
};

/** `--shard i/n`, 1-based as Slurm array and Kubernetes indices are read by people; stored 0-based. */
const shardOf = (v: string): { index: number; count: number } => {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  const [i, n] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  if (!(n >= 1 && i >= 1 && i <= n)) throw new InvalidArgumentError(`--shard must be i/n with 1 <= i <= n, got '${v}'`);
  return { index: i - 1, count: n };
};

const program = new Command('fusediff')
  .description('typed tensor functions, reverse-mode autodiff and gradient checks for diffusion training')
  .version(FUSEDIFF_VERSION, '-V, --version', 'print the version');

program
  .command('gradcheck')
  .description(
    'run the property-based gradient suite on the float64 interpreter (no compiler backend): ' +
      'every primitive and random graphs against finite differences',
  )
  .option('--json', 'print one JSON report', false)
  .option('--runs <n>', 'random cases per primitive', integer('--runs'), 100)
  .option('--seed <s>', 'fast-check seed', integer('--seed'), 1)
  .option('--only <names...>', 'only these primitives (and "graphs")')
  .action((o: { json: boolean; runs: number; seed: number; only?: string[] }) => {
    process.exitCode = gradcheck(o);
  });

program
  .command('demo')
  .description(
    'trace a small denoiser, take its gradient, check it and fit it for a few steps on the interpreter; ' +
      'then compile the same step for --backend and fit it again',
  )
  .option('--steps <n>', 'gradient steps', integer('--steps'), 200)
  .addOption(backendOption().default('auto'))
  .action((o: { steps: number; backend: BackendRequest }) => {
    process.exitCode = demo(o);
  });

program
  .command('inspect')
  .description(
    `show the fused kernels of a compiled example step (${Object.keys(examples).join(', ')}) or of your own step module ` +
      `(docs/your-step.md); with --profile, each kernel's share of the step's time`,
  )
  .argument('[example|module]', 'an example name, or the path of a step module (.ts, .js, .mjs; relative to the working directory)', 'mlp')
  .option('--json', 'print one JSON report', false)
  .option('--source', "print each kernel's generated source (on wasm: a listing of its kernel IR)", false)
  .option('--profile', "compile with per-kernel timing, run warm steps and print each kernel's share of the step", false)
  .option('--steps <n>', 'steps to profile (after 3 warm-up steps)', integer('--steps'), 10)
  .option(
    '--top <n>',
    'kernels in the profile table, the most expensive first (0: all); the rest are summed in one row',
    integer('--top'),
    15,
  )
  .addOption(backendOption().default('auto'))
  .action(
    async (name: string, o: { json: boolean; source: boolean; profile: boolean; steps: number; top: number; backend: BackendRequest }) => {
      const r = await inspect(name, o.backend, o.profile ? { profile: { steps: o.steps } } : {});
      if (o.json) console.log(JSON.stringify(r));
      else printInspect(r, o.source, o.top);
    },
  );

withRunOptions(
  program
    .command('train')
    .description(
      'stage 1: train a diffusion model with the MSE objective; writes <out>/checkpoint.safetensors, config.json, losses.json. ' +
        'Data set default mnist16: the UNet of pretrained:stage1-unet-mnist16, same config (9,000 steps, about an hour on 2 cores); ' +
        '--set model.kind=mlp for the MLP',
    ),
)
  .option('--out <dir>', 'run directory (default out/<dataset>-mse); a folder that holds a run needs --resume or --force')
  .option('--resume', 'continue from <out>/checkpoint.safetensors exactly where it stopped (with its saved config)', false)
  .option('--force', 'replace the run in --out (its checkpoint, config.json and losses.json are deleted first)', false)
  .option('--quiet', 'no progress bar (the result is still printed)', false)
  .option('--json', 'print the result as one JSON object on stdout', false)
  .action(async (o: TrainFlags) => {
    process.exitCode = await trainCommand(o);
  });

withRunOptions(
  program
    .command('finetune')
    .description(
      'stage 2: fine-tune a stage-1 checkpoint, ' +
        'by default with the self-perceptual objective (the frozen copy is made from the checkpoint)',
    ),
)
  .option('--from <checkpoint>', 'the stage-1 checkpoint (its config is the base of this run); with --resume, the recorded one')
  .option('--objective <name>', 'sp or mse (objective.kind; default sp)')
  .option('--layer <name>', "SP feature layer of the frozen copy: 'mid', another layer name, or 'all' (objective.layer)")
  .option('--t-prime <mode>', "SP t': 'uniform', 'same' or 'offset' (objective.tPrime)")
  .option('--t-prime-offset <n>', "SP t' - t in timesteps with --t-prime offset (objective.tPrimeOffset)")
  .option('--distance <d>', 'SP feature distance: mse or mae (objective.distance)')
  .option('--renoise <how>', "SP noise at t': predicted (eps_hat, the paper), true (eps) or fresh (objective.renoise)")
  .option('--perceptual <net>', 'SP perceptual network: frozen (the stage-1 copy) or ema (of the online model) (objective.perceptual)')
  .option('--out <dir>', 'run directory (default out/<dataset>-<objective>); never the folder of --from')
  .option('--resume', 'continue from <out>/checkpoint.safetensors exactly where it stopped (with its saved config)', false)
  .option('--force', 'replace the run in --out (its checkpoint, config.json and losses.json are deleted first)', false)
  .option('--quiet', 'no progress bar (the result is still printed)', false)
  .option('--json', 'print the result as one JSON object on stdout', false)
  .action(async (o: FinetuneFlags) => {
    process.exitCode = await finetuneCommand(o);
  });

program
  .command('experiment')
  .description(
    'the whole pipeline: stage 1 (committed checkpoint or trained), SP fine-tunes, sampling with and without CFG, evaluation, report',
  )
  .argument('[spec]', 'experiment spec JSON (default: the embedded default that npm start runs)')
  .option('--out <dir>', 'output directory (default out/<experiment name>)')
  .option('--train-stage1', 'train stage 1 even where a committed checkpoint exists', false)
  .option('--resume', 'continue the experiment in --out: finished jobs are skipped, a stopped training continues exactly', false)
  .option('--force', 'replace the experiment in --out (the files it wrote are deleted first)', false)
  .option('--shard <i/n>', 'run slice i of n (1-based) of the jobs into --out; no report (see --merge)', shardOf)
  .option('--stage1-only', 'train only the stage-1 models the spec trains (what shards need first)', false)
  .option('--merge [folders...]', "gather the finished jobs of the shards' folders into --out and write the report")
  .option('--quiet', 'no progress bars', false)
  .addOption(backendOption())
  .action(async (spec: string | undefined, o: Omit<ExperimentFlags, 'merge'> & { merge?: string[] | true }) => {
    process.exitCode = await experimentCommand(spec, { ...o, merge: o.merge === true ? [] : o.merge });
  });

const cfgList = (v: string) => {
  const xs = v.split(',').map(Number);
  if (xs.some((x) => !(x > 0))) throw new InvalidArgumentError(`--cfg must be positive numbers separated by commas, got '${v}'`);
  return xs;
};
const samplingOptions = (cmd: Command) =>
  cmd
    .requiredOption('--checkpoint <file>', 'a checkpoint written by train or finetune')
    .option('--cfg <scales>', "guidance scales, comma separated (1 = none); default the run config's sample.cfgScales", cfgList)
    .option('--count <n>', 'samples per scale (sample.count)', number('--count'))
    .option('--steps <n>', 'denoising steps (sample.steps)', number('--steps'))
    .option('--sampler <name>', 'ddim or ddpm (sample.sampler)')
    .option('--seed <n>', 'sampling seed (sample.seed)', number('--seed'))
    .option('--weights <which>', 'ema or params (sample.weights)')
    .addOption(backendOption())
    .option('--quiet', 'no progress bars (the result is still printed)', false)
    .option('--json', 'print the result as one JSON object on stdout', false);

samplingOptions(
  program
    .command('sample')
    .description('draw samples from a checkpoint: a PNG grid (MNIST) or scatter plot (2-D) and a samples .safetensors per scale'),
)
  .option('--out <dir>', "output directory (default out/samples/<run>: the checkpoint folder's name, or the file's)")
  .action(async (o: SampleFlags) => {
    process.exitCode = await sampleCommand(o);
  });

samplingOptions(
  program
    .command('eval')
    .description(
      'sample and evaluate a checkpoint: FD-MNIST, IS, class coverage (MNIST) or log-likelihood, off-data share, mode coverage (2-D)',
    ),
)
  .option('--out <dir>', "output directory (default out/eval/<run>: the checkpoint folder's name, or the file's)")
  .action(async (o: SampleFlags) => {
    process.exitCode = await evalCommand(o);
  });

program
  .command('curve')
  .description('metrics against training steps: samples and evaluates every given checkpoint of one run alike; curve.md, .json, .png')
  .argument(
    '<checkpoints...>',
    "one run's checkpoints (e.g. the step-<n>.safetensors that train.keepEvery keeps), any order; with a fine-tune's, " +
      'its stage-1 checkpoint is step 0',
  )
  .option('--cfg <scales>', 'guidance scales, comma separated (default 1: none)', cfgList)
  .option('--count <n>', 'samples per checkpoint and scale (sample.count)', number('--count'))
  .option('--steps <n>', 'denoising steps (sample.steps)', number('--steps'))
  .option('--seed <n>', 'sampling seed, the same for every checkpoint (sample.seed)', number('--seed'))
  .addOption(backendOption())
  .requiredOption('--out <dir>', 'output directory')
  .option('--quiet', 'no progress bars', false)
  .action(async (files: string[], o: CurveFlags) => {
    process.exitCode = await curveCommand(files, o);
  });

program
  .command('train-classifier')
  .description(
    'train the MNIST-16 evaluation classifier (FD-MNIST features, IS, coverage) with the DSL and compiler; saved only at --min-accuracy',
  )
  .option('--epochs <n>', 'epochs over the 8,000 training digits', number('--epochs'), 20)
  .option('--batch-size <n>', 'batch size', number('--batch-size'), 64)
  .option('--lr <x>', 'Adam learning rate', number('--lr'), 0.003)
  .option('--seed <n>', 'init and batch seed', number('--seed'), 0)
  .option('--max-steps <n>', 'stop after this many steps (smoke runs)', number('--max-steps'))
  .option('--min-accuracy <x>', 'save only at this held-out accuracy or above', number('--min-accuracy'), 0.97)
  .option('--out <file>', 'checkpoint file', 'pretrained/classifier-mnist16.safetensors')
  .addOption(backendOption().default('webasm'))
  .action(async (o: TrainClassifierFlags) => {
    process.exitCode = await trainClassifierCommand(o);
  });

program
  .command('bench')
  .description(
    'the benchmarks (tinybench): fusediff on every available backend (or --backend) ' +
      'side by side with TF.js and jax-js; writes bench/results/latest.json. ' +
      'With a module: your own step (docs/your-step.md), benchmarked in this process',
  )
  .argument('[module]', 'the path of a step module (.ts, .js, .mjs; relative to the working directory) to benchmark instead')
  .option('--quick', 'fewer iterations', false)
  .option('--no-peers', 'skip TF.js and jax-js')
  .option('--json', 'with a module: print one JSON report', false)
  .addOption(backendOption().default('auto'))
  .action(async (module: string | undefined, o: { quick: boolean; peers: boolean; backend: string; json: boolean }) => {
    if (module !== undefined) {
      const { benchModuleCommand } = await import('./stepModule.ts');
      process.exitCode = await benchModuleCommand(module, { quick: o.quick, backend: o.backend as BackendRequest, json: o.json });
      return;
    }
    const flags = [...(o.quick ? ['--quick'] : []), ...(o.peers ? [] : ['--no-peers']), '--backend', o.backend];
    // a checkout runs the harness's sources under a display (GL rows); an installed package runs its built harness
    // from the user's folder, which then receives the results
    const r = import.meta.url.endsWith('.ts')
      ? spawnSync('sh', ['scripts/with-display.sh', process.execPath, '--import', 'tsx', 'bench/run.ts', ...flags], {
          stdio: 'inherit',
          cwd: new URL('..', import.meta.url).pathname,
        })
      : spawnSync(process.execPath, [new URL('../bench/run.js', import.meta.url).pathname, ...flags], { stdio: 'inherit' });
    process.exitCode = r.status ?? 1;
  });

program.exitOverride();
// the webgpu backend's device is asked for asynchronously, once, before a command that names it resolves backends;
// the commands that train, sample or evaluate ask for it under auto too: on a hardware adapter auto times their step,
// sampler step and classifier there against wasm (train/compileStepAuto.ts, train/compilePlanAuto.ts), a software
// adapter is never taken. The others (demo, inspect, bench) compile with auto's untimed choice.
const TIMES_AUTO = new Set(['train', 'finetune', 'experiment', 'sample', 'eval']);
program.hook('preAction', async (_, action) => {
  const backend = (action.opts() as { backend?: string }).backend;
  if (backend === 'webgpu' || ((backend ?? 'auto') === 'auto' && TIMES_AUTO.has(action.name()))) await prepareWebGPU();
});
try {
  await program.parseAsync(process.argv);
} catch (e) {
  if ((e as { code?: string }).code?.startsWith('commander.')) process.exitCode = (e as { exitCode?: number }).exitCode ?? 1;
  else {
    console.error(`fusediff: ${(e as Error).name}: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
await shutdownBackends();
process.exit(process.exitCode ?? 0);
