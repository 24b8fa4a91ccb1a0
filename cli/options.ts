// Options shared by the commands that run a config: config file, --set overrides and the common shortcuts.
import fs from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { backendNames } from '../compiler/index.ts';
import { canonicalName, ConfigError, nearNames, resolveConfig, type Json, type RunConfig } from '../runs/config.ts';

export interface RunFlags {
  config?: string;
  set?: string[];
  dataset?: string;
  steps?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  backend?: string;
}

/** A commander parser for a finite number; the error names the flag. */
export const number = (name: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number, got '${v}'`);
  return n;
};

const backendChoices = [...backendNames, 'auto'];

/** --backend's parser: names match case-insensitively; webgl2 is refused for what it is (a browser's); typos get a suggestion. */
export const parseBackend = (v: string): string => {
  const name = canonicalName(v, backendChoices);
  if (name === 'webgl2')
    throw new InvalidArgumentError(
      'webgl2 exists only in a browser (see npm run play for the playground); ' +
        `in Node use ${backendChoices.filter((b) => b !== 'webgl2').join(', ')}`,
    );
  if (!backendChoices.includes(name)) {
    const near = nearNames(v, backendChoices);
    throw new InvalidArgumentError(`backends: ${backendChoices.join(', ')}${near.length ? `; did you mean ${near.join(' or ')}?` : ''}`);
  }
  return name;
};

export const backendOption = () =>
  new Option('--backend <name>', `compute backend: ${backendChoices.join(', ')} (webgl2: in a browser only)`).argParser(parseBackend);

/** Adds --config, --set and the shortcuts for the config's most used fields. */
export const withRunOptions = (cmd: Command): Command =>
  cmd
    .option('--config <file>', 'JSON run config (validated; every field optional, see docs/CONFIG.md)')
    .option('--set <path=value...>', 'override any config field, e.g. --set train.lr=0.001 model.hidden=256 (values are JSON)')
    .option('--dataset <name>', 'data set (config data.name)')
    .option('--steps <n>', 'training steps (train.steps)', number('--steps'))
    .option('--batch-size <n>', 'batch size (train.batchSize)', number('--batch-size'))
    .option('--lr <x>', 'learning rate (train.lr)', number('--lr'))
    .option('--seed <n>', 'seed of init, batches and noise (train.seed)', number('--seed'))
    .addOption(backendOption());

const parseSet = (s: string): [string, Json] => {
  const i = s.indexOf('=');
  if (i <= 0) throw new ConfigError(`--set ${s}: expected path=value, e.g. train.lr=0.001`);
  const raw = s.slice(i + 1);
  let v: Json;
  try {
    v = JSON.parse(raw) as Json;
  } catch {
    v = raw; // a bare word is a string: --set data.name=mnist16
  }
  return [s.slice(0, i), v];
};

/** Dotted config paths -> flag values, leaving out the flags not given. */
export const definedOverrides = (pairs: Record<string, Json | undefined>): Record<string, Json> =>
  Object.fromEntries(Object.entries(pairs).filter((e): e is [string, Json] => e[1] !== undefined));

/** Flags -> dotted overrides; explicit flags win over --set. */
export const overridesOf = (f: RunFlags, extra: Record<string, Json | undefined> = {}): Record<string, Json> => ({
  ...Object.fromEntries((f.set ?? []).map(parseSet)),
  ...definedOverrides({
    'data.name': f.dataset,
    'train.steps': f.steps,
    'train.batchSize': f.batchSize,
    'train.lr': f.lr,
    'train.seed': f.seed,
    backend: f.backend,
    ...extra,
  }),
});

export const readJsonFile = (path: string): unknown => {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
};

export const configFrom = (
  f: RunFlags,
  extra: Record<string, Json | undefined> = {},
  base?: RunConfig,
  fallbackDataset = 'mnist16',
): RunConfig =>
  resolveConfig(f.config ? { json: readJsonFile(f.config), path: f.config } : undefined, overridesOf(f, extra), fallbackDataset, base);
