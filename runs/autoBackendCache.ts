// The CLI's cache of `auto`'s timed choices (train/autoChoice.ts) on disk: one small JSON file in the user's cache
// folder, read once, checked with io-ts, rewritten atomically on each new choice. A file that cannot be read or
// does not check is ignored with a warning (the choice is timed again), never an error.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as t from 'io-ts';
import { decodeOrThrow } from '../storage/ioReport.ts';
import { writeFileAtomic } from '../storage/atomicWrite.ts';
import type { ChoiceCache, TimedChoice } from '../train/autoChoice.ts';

const Backend = t.keyof({ webgpu: null, wasm: null }, 'webgpu | wasm');
const Choice = t.type({
  backend: Backend,
  msPerStep: t.type({ webgpu: t.number, wasm: t.number }),
  adapter: t.string,
  at: t.string,
});
const CacheFile = t.type({ version: t.literal(1), choices: t.record(t.string, Choice) }, 'auto-backend cache');
type CacheFile = t.TypeOf<typeof CacheFile>;

/** $FUSEDIFF_CACHE_DIR, else $XDG_CACHE_HOME/fusediff, else ~/.cache/fusediff; the file auto-backend.json in it. */
export const defaultCacheFile = (env: NodeJS.ProcessEnv = process.env): string =>
  path.join(env.FUSEDIFF_CACHE_DIR ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'fusediff'), 'auto-backend.json');

const entryKey = (planKey: string, adapter: string): string => `${planKey}@${adapter}`;

/** The choices in `file`: none when it does not exist; a warning and none when it cannot be read or does not check. */
const readChoices = (file: string, warn: (message: string) => void): Record<string, TimedChoice> => {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') warn(`${file} cannot be read (${(e as Error).message}); timing again`);
    return {};
  }
  try {
    return decodeOrThrow(CacheFile, JSON.parse(text), 'cache', (m) => new Error(m)).choices;
  } catch (e) {
    warn(`${file} is not a valid auto-backend cache (${(e as Error).message.split('\n')[0]}); it is ignored and rewritten`);
    return {};
  }
};

/**
 * A ChoiceCache kept in `file` (default: defaultCacheFile()) and in memory. A failed write is a warning: the choice
 * then lasts for this process only.
 */
export const fileChoiceCache = (
  file = defaultCacheFile(),
  warn: (message: string) => void = (m) => process.emitWarning(m, 'AutoBackendCacheWarning'),
): ChoiceCache => {
  let choices: Record<string, TimedChoice> | undefined;
  const loaded = () => (choices ??= readChoices(file, warn));
  return {
    get: (key, adapter) => loaded()[entryKey(key, adapter)],
    set: (key, choice) => {
      loaded()[entryKey(key, choice.adapter)] = choice;
      // entries another process wrote meanwhile are kept (the last writer's own entry wins where both wrote one)
      const onDisk = fs.existsSync(file) ? readChoices(file, () => {}) : {};
      const body: CacheFile = { version: 1, choices: { ...onDisk, ...choices } };
      try {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        writeFileAtomic(file, new TextEncoder().encode(`${JSON.stringify(body, null, 1)}\n`));
      } catch (e) {
        warn(`the auto-backend choice could not be saved (${(e as Error).message}); it holds for this run only`);
      }
    },
  };
};

let shared: ChoiceCache | undefined;
/** The CLI's cache for this process: fileChoiceCache() made once, so every plan of a command reads and adds to one file. */
export const cliChoiceCache = (): ChoiceCache => (shared ??= fileChoiceCache());
