// Files the package ships beside its code (package.json, the committed checkpoints in pretrained/), found from this
// module's own location: the same answer from the repository's sources, from dist/, and from node_modules/fusediff.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The folder of fusediff's package.json (the checkout, or the installed package). */
export const packageRoot = (): string => {
  if (root !== undefined) return root;
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'fusediff')
      return (root = dir);
    if (path.dirname(dir) === dir) throw new Error(`no fusediff package.json above ${fileURLToPath(import.meta.url)}`);
  }
};

/** A file the package ships, by its path inside the package. */
export const packageFile = (...parts: string[]): string => path.join(packageRoot(), ...parts);

/** The prefix of a committed checkpoint's reference: `pretrained:stage1-unet-mnist16`. */
export const PRETRAINED = 'pretrained:';

/** The committed checkpoints this package holds, as `pretrained:NAME` references. */
export const pretrainedNames = (): string[] =>
  fs
    .readdirSync(packageFile('pretrained'))
    .filter((f) => f.endsWith('.safetensors'))
    .map((f) => PRETRAINED + f.slice(0, -'.safetensors'.length))
    .sort();

/**
 * Where a checkpoint reference points: `pretrained:NAME` is the package's pretrained/NAME.safetensors (so commands
 * work from any folder, and from an installed package); a run folder means its checkpoint.safetensors; anything
 * else is a path as given. An unknown `pretrained:` name is an error listing the ones there are.
 */
export const resolveCheckpointRef = (ref: string): string => {
  if (ref.startsWith(PRETRAINED)) {
    const name = ref.slice(PRETRAINED.length);
    const file = packageFile('pretrained', `${name}.safetensors`);
    if (!/^[\w.-]+$/.test(name) || !fs.existsSync(file))
      throw new Error(`${ref}: no such committed checkpoint; this package has ${pretrainedNames().join(', ') || 'none'}`);
    return file;
  }
  const inFolder = path.join(ref, 'checkpoint.safetensors');
  return fs.existsSync(ref) && fs.statSync(ref).isDirectory() && fs.existsSync(inFolder) ? inFolder : ref;
};
