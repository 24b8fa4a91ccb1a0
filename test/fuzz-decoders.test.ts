// Fuzzing every decoder of user input (issue 23, item 12) with fast-check, biased toward hostile inputs: prototype
// keys (__proto__, constructor, prototype), `..`, very long strings, huge numbers, NaN/Infinity in JSON text,
// duplicate keys, hostile safetensors header lengths, offsets and dtypes, and raw HTTP request lines. Each case must
// either succeed or throw the decoder's own error type (ConfigError, SafetensorsError, CheckpointError) naming the
// input (the file, the --set path, the source); never a TypeError or RangeError. After every case Object.prototype
// (and Array's, Function's, String's, Number's) is exactly as it was and `({}).polluted` is undefined; what a decoder
// returns is built of plain objects (no prototype replaced) without prototype keys; nothing is written to the working
// folder (the suite runs in an empty temporary one).
//
// Run counts (numRuns, per property below): --config/--set 1500, setPath 1000, merge 1000, specs 600, safetensors 4000,
// checkpoints 1500 (each decoded twice), server requests 600; about 10,000 cases and 10 s for the whole file on one
// core (deep JSON, 20,000 levels, is most of it). FUZZ_RUNS_SCALE=10 multiplies them for a deeper search; a failure
// prints fast-check's seed and shrunk counterexample (rerun one with fc.assert's { seed, path }).
//
// What an "own key" means here: JSON.parse('{"__proto__": {...}}') makes an own property named __proto__ (not a
// prototype); a later spread, Object.assign or io-ts copy turns it into the copy's prototype, and dsl/tree.ts's
// unflatten (`node[k] ??= {}`) walks from it into Object.prototype. So no decoder may hand one on.
//
// The counterexamples the fuzz found are regression tests at the end of the file.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { configFrom } from '../cli/options.ts';
import { mapParams, type Params } from '../dsl/params.ts';
import { decodeSpec, defaultSpec } from '../experiments/spec.ts';
import { ConfigError, defaultConfig, finetuneBase, merge, resolveConfig, setPath, type Json, type RunConfig } from '../runs/config.ts';
import { StoredConfig } from '../runs/trainer.ts';
import { CheckpointError, decodeCheckpoint, sameSignature, SignatureMismatchError } from '../storage/checkpoint.ts';
import { decodeSafetensors, encodeSafetensors, SafetensorsError } from '../storage/safetensors.ts';
import { serve, type Playground } from '../web/server.ts';

const SCALE = Number(process.env.FUZZ_RUNS_SCALE ?? 1);
const runs = (n: number) => ({ numRuns: Math.max(1, Math.round(n * SCALE)) });

// ---- the invariants ------------------------------------------------------------------------------------------------

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype'];
const prototypes = [Object.prototype, Array.prototype, Function.prototype, String.prototype, Number.prototype];
/** Every own property of the built-in prototypes, by identity of its value or accessors. */
const snapshot = () =>
  prototypes.map((p) => {
    const ds = Object.getOwnPropertyDescriptors(p);
    return new Map(Reflect.ownKeys(ds).map((k) => [k, [ds[k as string].value, ds[k as string].get, ds[k as string].set]]));
  });
let baseline: ReturnType<typeof snapshot>;

/** Object.prototype and its kin unchanged, `({}).polluted` undefined. */
const assertUnpolluted = (what: string) => {
  assert.equal(({} as { polluted?: unknown }).polluted, undefined, `${what}: ({}).polluted is set`);
  const now = snapshot();
  now.forEach((m, i) => {
    const was = baseline[i];
    assert.equal(m.size, was.size, `${what}: keys added to or removed from a built-in prototype`);
    for (const [k, v] of m)
      assert.ok(
        was.get(k)?.every((x, j) => x === v[j]),
        `${what}: ${String(k)} of a built-in prototype changed`,
      );
  });
};

/**
 * Every object reachable from `v` is an array, a typed array or an object whose prototype is Object.prototype (or
 * null): no prototype was replaced on the way. With `noProtoKeys`, no own key is __proto__, constructor or prototype.
 */
const assertPlain = (v: unknown, where: string, noProtoKeys: boolean) => {
  const stack: [unknown, string][] = [[v, where]];
  while (stack.length) {
    const [x, at] = stack.pop()!;
    if (typeof x !== 'object' || x === null || ArrayBuffer.isView(x)) continue;
    if (Array.isArray(x)) {
      assert.equal(Object.getPrototypeOf(x), Array.prototype, `${at}: an array whose prototype was replaced`);
      x.forEach((y, i) => stack.push([y, `${at}[${i}]`]));
      continue;
    }
    const proto = Object.getPrototypeOf(x);
    assert.ok(proto === Object.prototype || proto === null, `${at}: an object whose prototype was replaced`);
    for (const k of Object.keys(x)) {
      if (noProtoKeys) assert.ok(!PROTO_KEYS.includes(k), `${at}: own key '${k}'`);
      stack.push([(x as Record<string, unknown>)[k], `${at}.${k}`]);
    }
  }
};

type ErrorType = abstract new (...args: never[]) => Error;
/**
 * Runs `f`: `{ ok: true, value }` when it returns, `{ ok: false }` when it throws one of `types` whose message passes
 * `names` (it names the input); anything else fails the property with what was thrown. The prototypes are checked
 * either way.
 */
const decodes = <T>(
  f: () => T,
  types: ErrorType[],
  names: (message: string) => boolean,
  what: string,
): { ok: true; value: T } | { ok: false } => {
  try {
    const value = f();
    assertUnpolluted(what);
    return { ok: true, value };
  } catch (e) {
    assertUnpolluted(what);
    if (!types.some((T) => e instanceof T))
      throw new Error(
        `${what}: threw ${(e as Error)?.name ?? typeof e}, not ${types.map((T) => T.name).join(' or ')}: ${(e as Error)?.message}`,
        {
          cause: e,
        },
      );
    if (!names((e as Error).message)) throw new Error(`${what}: the error does not name the input: ${(e as Error).message}`);
    return { ok: false };
  }
};

/** How many cases each property accepted and refused, for the diagnostics. */
const tally = () => {
  const n = { ok: 0, refused: 0 };
  return {
    n,
    add: (r: { ok: boolean }) => (r.ok ? n.ok++ : n.refused++),
    show: (t: TestContext, what: string) => t.diagnostic(`${what}: ${n.ok} decoded, ${n.refused} refused with a typed error`),
  };
};

// ---- hostile JSON ---------------------------------------------------------------------------------------------------

const longStrings = [
  'x'.repeat(20_000),
  '.'.repeat(5_000),
  `${'__proto__.'.repeat(500)}polluted`,
  `${'../'.repeat(1000)}etc/passwd`,
  'é\u0000\u2028\ud800'.repeat(500),
];
/** JSON nested `n` deep under `key` (objects) or in arrays: recursion in a decoder would overflow the stack. */
const deep = (n: number, key?: string) =>
  key === undefined ? `${'['.repeat(n)}1${']'.repeat(n)}` : `${`{"${key}":`.repeat(n)}1${'}'.repeat(n)}`;
const DEEP = [deep(20_000), deep(20_000, 'data'), deep(20_000, '__proto__'), deep(20_000, 'config')];
const ODD_KEYS = [
  'toString',
  'valueOf',
  'hasOwnProperty',
  '__defineSetter__',
  '..',
  '.',
  '',
  ' ',
  'a.b',
  '../..',
  '__metadata__',
  'fusediff',
];
/** The keys of the run config at every level (data, name, model, kind, hidden, ...). */
const configKeys = (() => {
  const keys = new Set<string>(['channelMults', 'baseChannels', 'numResBlocks', 'groups', 'embDim', 'midAttention', 'run', 'init']);
  const walk = (v: unknown) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return;
    for (const [k, x] of Object.entries(v)) (keys.add(k), walk(x));
  };
  walk(defaultConfig('eightGaussians'));
  return [...keys];
})();

const keyOf = (common: readonly string[]) =>
  fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...common) },
    { weight: 3, arbitrary: fc.constantFrom(...PROTO_KEYS) },
    { weight: 2, arbitrary: fc.constantFrom(...ODD_KEYS) },
    { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
    { weight: 1, arbitrary: fc.constantFrom(...longStrings) },
  );
const configKey = keyOf(configKeys);

/** Number tokens JSON.parse accepts, the hostile ones among them (1e309 parses to Infinity, 1e-400 to 0). */
const numberToken = fc.oneof(
  fc.constantFrom('0', '-0', '1', '-1', '0.5', '2', '3', '128', '1000', '1e308', '-1e308', '1e309', '-1e309', '1e-400', '1e21'),
  fc.constantFrom('9007199254740993', '18446744073709551615', '4294967296', '2147483648', '-9007199254740993'),
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => JSON.stringify(x)),
);
/** Tokens JSON.parse refuses: what a hand-written config may hold. */
const badNumberToken = fc.constantFrom('NaN', 'Infinity', '-Infinity', '01', '+1', '0x10', '.5', '1.', '1e', '-');
const NAMES = ['mlp', 'unet', 'eightGaussians', 'eightgaussians', 'mnist16', 'cosine', 'sp', 'mse', 'auto', 'wasm', 'ema', 'F32'];
const stringToken = fc.oneof(configKey, fc.constantFrom(...NAMES)).map((s) => JSON.stringify(s));

/** JSON text, keys biased to `key`; with `strict` false it may hold tokens JSON.parse refuses. */
const jsonText = (key: fc.Arbitrary<string>, strict: boolean) =>
  fc.letrec<{ value: string; scalar: string; array: string; object: string }>((tie) => ({
    value: fc.oneof({ depthSize: 'small', maxDepth: 5 }, tie('scalar'), tie('array'), tie('object')),
    scalar: fc.oneof(
      numberToken,
      stringToken,
      fc.constantFrom('true', 'false', 'null'),
      ...(strict ? [] : [{ weight: 1, arbitrary: badNumberToken }]),
    ),
    array: fc.array(tie('value'), { maxLength: 4 }).map((xs) => `[${xs.join(',')}]`),
    // pairs, not a record: a key may come twice (JSON.parse keeps the last)
    object: fc
      .array(fc.tuple(key, tie('value')), { maxLength: 5 })
      .map((kvs) => `{${kvs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
  })).value;

const configJson = jsonText(configKey, true);

/** Sets `value` at `keys` in parsed JSON as own properties (as JSON.parse makes them, "__proto__" included). */
const setOwn = (root: unknown, keys: readonly string[], value: unknown): void => {
  let node = root;
  for (const k of keys.slice(0, -1)) {
    if (typeof node !== 'object' || node === null) return;
    const rec = node as Record<string, unknown>;
    if (!Object.hasOwn(rec, k) || typeof rec[k] !== 'object' || rec[k] === null)
      Object.defineProperty(rec, k, { value: {}, enumerable: true, writable: true, configurable: true });
    node = rec[k];
  }
  if (typeof node !== 'object' || node === null) return;
  const last = keys[keys.length - 1];
  if (value === undefined) delete (node as Record<string, unknown>)[last];
  else Object.defineProperty(node, last, { value, enumerable: true, writable: true, configurable: true });
};

/** `arb` once in `1 + rest` draws, else null. */
const sometimes = <T>(arb: fc.Arbitrary<T>, rest: number) =>
  fc.oneof({ weight: rest, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });

/** Values that often pass a config's types: small numbers, booleans, names; else any JSON. */
const plausible = (key: fc.Arbitrary<string>) =>
  fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom('0', '1', '2', '16', '0.5', 'true', 'false', '[1,3]', ...NAMES.map((n) => JSON.stringify(n))) },
    // objects that String() and template literals choke on, an own __proto__, an array of them
    {
      weight: 1,
      arbitrary: fc.constantFrom('{"toString":1}', '{"toString":{},"valueOf":[]}', '{"__proto__":{"polluted":1}}', '[{"toString":0}]'),
    },
    { weight: 1, arbitrary: jsonText(key, true) },
  );

/** A few edits of a JSON document (none, sometimes): a value or a deletion at a path whose keys are biased to `key`. */
const edits = (key: fc.Arbitrary<string>, paths: fc.Arbitrary<string[]> = fc.array(key, { minLength: 1, maxLength: 4 })) =>
  fc.array(
    fc.record({
      keys: paths,
      // null: delete the key
      value: fc.option(plausible(key), { freq: 5 }),
    }),
    { maxLength: 3 },
  );
const edited = (doc: unknown, es: { keys: string[]; value: string | null }[]): string => {
  const root = structuredClone(doc);
  for (const e of es) setOwn(root, e.keys, e.value === null ? undefined : JSON.parse(e.value));
  return JSON.stringify(root);
};

// ---- the working folder --------------------------------------------------------------------------------------------

const inputs = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-fuzz-in-'));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-fuzz-cwd-'));
const cwd = process.cwd();
let pg: Playground;

before(async () => {
  baseline = snapshot();
  const entry = path.join(inputs, 'entry.ts');
  fs.writeFileSync(entry, 'export const x: number = 1;\n');
  pg = await serve({ port: 0, entries: { '/main.js': entry }, pages: { '/': '<!doctype html><title>t</title>' } });
  process.chdir(work);
});

after(async () => {
  process.chdir(cwd);
  await pg?.close();
  const left = fs.readdirSync(work);
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(inputs, { recursive: true, force: true });
  assert.deepEqual(left, [], 'the decoders wrote nothing to the working folder');
});

// ---- configs: --config JSON and --set ------------------------------------------------------------------------------

/** The config's own dotted paths: train.lr, data.name, model.kind, ... */
const leafPaths = (() => {
  const out: string[] = [];
  const walk = (v: unknown, at: string) => {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) walk(x, at ? `${at}.${k}` : k);
    else out.push(at);
  };
  walk(defaultConfig('eightGaussians'), '');
  return out;
})();
/** A dotted config path: one of the config's, one with a prototype key or `..` put in, or segments biased to its keys. */
const dotted = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...leafPaths) },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.constantFrom(...leafPaths), fc.nat(), fc.constantFrom(...PROTO_KEYS, '..', '')).map(([p, i, k]) => {
      const ks = p.split('.');
      ks.splice(i % (ks.length + 1), 0, k);
      return ks.join('.');
    }),
  },
  { weight: 2, arbitrary: fc.array(configKey, { minLength: 1, maxLength: 4 }).map((ks) => ks.join('.')) },
);
/** A --set argument: `path=value` (the value JSON, or a bare word), or any short string. */
const setArg = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(dotted, fc.oneof(plausible(configKey), jsonText(configKey, false), fc.constantFrom(...NAMES, ...DEEP)))
      .map(([p, v]) => `${p}=${v}`),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);
/** A --config file's text: the defaults edited, or any JSON-ish text (NaN and Infinity included). */
const configFileText = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.constantFrom('eightGaussians', 'mnist16'),
        edits(
          configKey,
          dotted.map((p) => p.split('.').slice(0, 6)),
        ),
      )
      .map(([d, es]) => edited(defaultConfig(d), es)),
  },
  { weight: 2, arbitrary: jsonText(configKey, false) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', '{', 'null', '[]', '"x"', '{"data": NaN}', '{"train": {"lr": Infinity}}', '{"a":1,"a":2}', ...DEEP),
  },
);

test('--config and --set: a run config, or a ConfigError naming the file or the --set path', (t) => {
  const count = tally();
  let files = 0;
  fc.assert(
    fc.property(fc.option(configFileText, { freq: 6 }), fc.array(setArg, { maxLength: 3 }), (text, sets) => {
      const config = text === null ? undefined : path.join(inputs, `run-${files++}.json`);
      if (config) fs.writeFileSync(config, text!);
      const names = (m: string) =>
        (config ? m.startsWith(config) || m.startsWith(`cannot read config ${config}`) : m.startsWith('config')) ||
        sets.some((s) => m.startsWith(`--set ${s}`) || (s.indexOf('=') > 0 && m.startsWith(`${s.slice(0, s.indexOf('='))}: `)));
      const r = decodes(() => configFrom({ config, set: sets }, {}, undefined, 'eightGaussians'), [ConfigError], names, 'configFrom');
      count.add(r);
      if (r.ok) assertPlain(r.value, 'config', true);
    }),
    runs(1500),
  );
  count.show(t, 'configFrom');
});

test('setPath and merge: success or a ConfigError naming the path; no prototype is reached', (t) => {
  const count = tally();
  fc.assert(
    fc.property(configJson, dotted, configJson, (base, p, value) => {
      const parsed = JSON.parse(base) as unknown;
      const obj = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
      const r = decodes(
        () => setPath(obj, p, JSON.parse(value) as Json),
        [ConfigError],
        (m) => m.startsWith(`${p}: `),
        'setPath',
      );
      count.add(r);
      assertPlain(obj, 'setPath', false);
    }),
    runs(1000),
  );
  fc.assert(
    fc.property(fc.oneof(configJson, fc.constant(JSON.stringify(defaultConfig('eightGaussians')))), configJson, (a, b) => {
      const r = decodes(
        () => merge(JSON.parse(a), JSON.parse(b)),
        [ConfigError],
        (m) => m.startsWith('config.'),
        'merge',
      );
      count.add(r);
      if (r.ok) assertPlain(r.value, 'merge', false);
    }),
    runs(1000),
  );
  count.show(t, 'setPath and merge');
});

// ---- experiment specs -----------------------------------------------------------------------------------------------

const specKeys = [
  ...new Set([
    ...['name', 'backend', 'datasets', '0', '1', 'dataset', 'stage1Checkpoint', 'stage1Set', 'finetunes', 'set', 'sampleSet'],
    ...['rows', 'model', 'cfg', 'seeds', 'unconditional', 'rescale'],
  ]),
];
const specKey = keyOf(specKeys);
/** An override of a spec's set, stage1Set or sampleSet: a dotted config path (prototype keys in it) and a value. */
const overrideEdit = fc.record({
  at: fc.constantFrom(['stage1Set'], ['sampleSet'], ['finetunes', '0', 'set']),
  dataset: fc.constantFrom('0', '1'),
  key: fc.oneof(
    dotted,
    fc.constantFrom('__proto__.polluted', 'constructor.prototype.polluted', 'sample.__proto__.polluted', '__proto__', 'data.name'),
  ),
  value: jsonText(configKey, true),
});
const specText = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.tuple(edits(specKey), fc.array(overrideEdit, { maxLength: 3 })).map(([es, os]) => {
      const doc = JSON.parse(edited(defaultSpec, es)) as unknown;
      for (const o of os) setOwn(doc, ['datasets', o.dataset, ...o.at, o.key], JSON.parse(o.value));
      return JSON.stringify(doc);
    }),
  },
  { weight: 1, arbitrary: jsonText(specKey, true) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(...DEEP)
      .map((d) =>
        JSON.stringify({ ...defaultSpec, datasets: [{ ...defaultSpec.datasets[0], stage1Set: {} }] }).replace(
          '"stage1Set":{}',
          `"stage1Set":{"x":${d}}`,
        ),
      ),
  },
);

test('experiment specs: decodeSpec, then every set through resolveConfig; success or a ConfigError naming the source', (t) => {
  const count = tally();
  const source = 'fuzz-spec.json';
  fc.assert(
    fc.property(specText, (text) => {
      const spec = decodes(
        () => decodeSpec(JSON.parse(text), source),
        [ConfigError],
        (m) => m.startsWith(source),
        'decodeSpec',
      );
      count.add(spec);
      if (!spec.ok) return;
      assertPlain(spec.value, 'spec', false);
      const e = spec.value;
      // as the experiment runner resolves them (experiments/plan.ts): a set's error names one of its paths, or the config
      for (const d of e.datasets) {
        const names = (set: Record<string, unknown>) => (m: string) =>
          m.startsWith('config') || Object.keys(set).some((k) => m.startsWith(`${k}: `));
        const resolve = (set: Record<string, unknown>, fixed: Record<string, Json>, base?: RunConfig) =>
          decodes(
            () => resolveConfig(undefined, { ...(set as Record<string, Json>), ...fixed }, d.dataset, base),
            [ConfigError],
            names(set),
            'resolveConfig',
          );
        const stage1 = resolve(d.stage1Set, { 'data.name': d.dataset, 'objective.kind': 'mse', backend: e.backend });
        count.add(stage1);
        if (!stage1.ok) continue;
        assertPlain(stage1.value, 'stage1 config', true);
        for (const f of d.finetunes) {
          const r = resolve({ 'objective.kind': 'sp', ...f.set }, { backend: e.backend }, finetuneBase(stage1.value));
          count.add(r);
          if (r.ok) assertPlain(r.value, 'fine-tune config', true);
        }
        const s = resolve({ backend: 'auto', ...d.sampleSet }, {}, stage1.value);
        count.add(s);
        if (s.ok) assertPlain(s.value, 'sample config', true);
      }
    }),
    runs(600),
  );
  count.show(t, 'specs');
});

// ---- safetensors and checkpoints ------------------------------------------------------------------------------------

const DTYPES = ['F32', 'F64', 'F16', 'BF16'];
const OTHER_DTYPES = ['I32', 'I64', 'U8', 'BOOL', 'F8_E4M3', 'F8_E8M0', 'U64', 'f32', '', 'F32 ', '__proto__', 'constructor', 'toString'];
const WIDTH: Record<string, number> = { F32: 4, F64: 8, F16: 2, BF16: 2, I32: 4, I64: 8, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E8M0: 1, U64: 8 };
const TENSOR_NAMES = [
  ...['params', 'params.w', 'params.b', 'params.a.b', 'params.a', 'state.m.w', 'state.v.w', 'ema.w', 'ema'],
  ...['params.__proto__.polluted', 'params.constructor.prototype.polluted', 'params.prototype', 'ema.__proto__', 'state.constructor'],
  ...['__proto__', 'constructor', '__metadata__', 'params..w', 'params.', 'x', ''],
];
const tensorName = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...TENSOR_NAMES) }, { weight: 1, arbitrary: keyOf(TENSOR_NAMES) });
const offsetToken = fc.oneof(
  fc.nat({ max: 96 }).map(String),
  fc.constantFrom('-1', '-8', '1.5', '1e308', '1e309', '9007199254740992', '9007199254740993', '18446744073709551615', '4294967296', '"8"'),
);

/** The first 8 bytes: N as a little-endian u64. */
const prefix = (n: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, n), true);
  return b;
};
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
};
/** A header length: the right one, one near it, or a hostile one (0, 1, 2^63, 2^64 - 1, beyond the 100 MB limit). */
const headerLength = fc.oneof(
  { weight: 6, arbitrary: fc.constant(0n) },
  { weight: 2, arbitrary: fc.integer({ min: -9, max: 9 }).map(BigInt) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(2n ** 63n, 2n ** 64n - 1n, 2n ** 53n + 1n, 2n ** 32n, 100_000_001n, -1n, -8n).map((n) => ({ absolute: n })),
  },
);
/** A file from a header's text, a data section and a header-length adjustment (a bigint: added; { absolute }: as is). */
const file = (header: string, pad: number, data: Uint8Array, len: bigint | { absolute: bigint }) => {
  const h = new TextEncoder().encode(header + ' '.repeat(pad));
  return concat(prefix(typeof len === 'bigint' ? BigInt(h.length) + len : len.absolute), h, data);
};

/** Tensors whose byte ranges tile the data section (in a random order), every dtype: mostly valid files. */
const tiledFile = fc
  .record({
    tensors: fc.array(
      fc.record({
        name: tensorName,
        dtype: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...DTYPES) }, { weight: 1, arbitrary: fc.constantFrom(...OTHER_DTYPES) }),
        shape: fc.array(fc.nat({ max: 3 }), { maxLength: 3 }),
      }),
      { maxLength: 5 },
    ),
    order: fc.array(fc.nat(), { maxLength: 5 }),
    metadata: fc.option(
      fc.oneof(
        fc.dictionary(configKey, fc.string({ maxLength: 8 }), { maxKeys: 3 }).map((m) => JSON.stringify(m)),
        configJson,
      ),
    ),
    pad: fc.nat({ max: 7 }),
    seed: fc.integer(),
  })
  .map(({ tensors, order, metadata, pad, seed }) => {
    const sized = tensors.map((x, i) => ({ ...x, bytes: (WIDTH[x.dtype] ?? 4) * x.shape.reduce((a, b) => a * b, 1), key: order[i] ?? i }));
    let offset = 0;
    const entries = [...sized]
      .sort((a, b) => a.key - b.key)
      .map(
        (x) =>
          `${JSON.stringify(x.name)}:${JSON.stringify({ dtype: x.dtype, shape: x.shape, data_offsets: [offset, (offset += x.bytes)] })}`,
      );
    if (metadata !== null) entries.unshift(`"__metadata__":${metadata}`);
    const data = new Uint8Array(offset).map((_, i) => (seed * 31 + i * 97) & 0xff);
    return { header: `{${entries.join(',')}}`, pad, data };
  });

/** A header of hostile entries: dtypes, shapes and offsets out of range, missing or extra fields, duplicate names. */
const hostileHeader = fc
  .array(
    fc.tuple(
      tensorName,
      fc.oneof(
        fc
          .record({
            dtype: fc.constantFrom(...DTYPES, ...OTHER_DTYPES, longStrings[0]).map((d) => JSON.stringify(d)),
            shape: fc.oneof(
              fc.array(offsetToken, { maxLength: 4 }).map((ds) => `[${ds.join(',')}]`),
              configJson,
            ),
            offsets: fc.oneof(
              fc.array(offsetToken, { maxLength: 3 }).map((os) => `[${os.join(',')}]`),
              configJson,
            ),
          })
          .map(({ dtype, shape, offsets }) => `{"dtype":${dtype},"shape":${shape},"data_offsets":${offsets}}`),
        jsonText(keyOf(['dtype', 'shape', 'data_offsets', 'fusediff']), false),
      ),
    ),
    { maxLength: 5 },
  )
  .map((es) => `{${es.map(([n, v]) => `${JSON.stringify(n)}:${v}`).join(',')}}`);

/** Byte edits of a file: (position, byte) pairs, biased to the prefix and the header, and a truncation. */
const damage = fc.record({
  flips: fc.array(fc.tuple(fc.oneof(fc.nat({ max: 16 }), fc.nat({ max: 200 }), fc.nat()), fc.integer({ min: 0, max: 255 })), {
    maxLength: 4,
  }),
  cut: sometimes(fc.nat({ max: 400 }), 3),
});
const damaged = (bytes: Uint8Array, d: { flips: [number, number][]; cut: number | null }) => {
  const out = Uint8Array.from(bytes);
  for (const [at, b] of d.flips) if (out.length) out[at % out.length] = b;
  return d.cut === null ? out : out.subarray(0, Math.min(out.length, d.cut));
};

const safetensorsFile = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  {
    weight: 4,
    arbitrary: fc
      .tuple(tiledFile, headerLength, fc.option(damage, { freq: 2 }))
      .map(([f, len, d]) => (d ? damaged(file(f.header, f.pad, f.data, len), d) : file(f.header, f.pad, f.data, len))),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(hostileHeader, fc.nat({ max: 7 }), fc.uint8Array({ maxLength: 96 }), headerLength)
      .map(([h, pad, data, len]) => file(h, pad, data, len)),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(jsonText(keyOf(TENSOR_NAMES), false), fc.uint8Array({ maxLength: 16 }), headerLength)
      .map(([h, d, len]) => file(h, 0, d, len)),
  },
);

test('safetensors: decodeSafetensors decodes or throws a SafetensorsError naming the source', (t) => {
  const count = tally();
  const source = 'fuzz.safetensors';
  fc.assert(
    fc.property(safetensorsFile, (bytes) => {
      const r = decodes(
        () => decodeSafetensors(bytes, { source }),
        [SafetensorsError],
        (m) => m.startsWith(`${source}: `),
        'decodeSafetensors',
      );
      count.add(r);
      if (!r.ok) return;
      assertPlain(r.value, 'decoded', false);
      for (const [name, a] of Object.entries(r.value.tensors))
        assert.equal(
          a.data.length,
          a.shape.reduce((x, y) => x * y, 1),
          `${name}: as many values as its shape holds`,
        );
    }),
    runs(4000),
  );
  count.show(t, 'decodeSafetensors');
});

/** Valid checkpoint metadata (an older run's config: no keepEvery, so io-ts fills it in and copies), then edited. */
const metadataOf = (config: unknown) => ({
  format: 1,
  version: '0.1.0',
  signature: 'sig',
  step: 3,
  rngCounter: 4,
  schedule: 'cosine',
  config,
});
const oldRun = (() => {
  const run = defaultConfig('eightGaussians') as unknown as { train: Record<string, unknown> };
  delete run.train.keepEvery;
  return run;
})();
const metadataText = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .tuple(
        fc.constantFrom<unknown>(
          { run: oldRun },
          { run: defaultConfig('eightGaussians'), init: { from: 'a', sha256: 'b', weights: 'ema', step: 1 } },
          {},
        ),
        edits(keyOf([...configKeys, 'config', 'format', 'step', 'signature', 'from'])),
      )
      .map(([config, es]) => {
        // edits at the top of the metadata, in its config, or in the run config
        const doc = metadataOf(structuredClone(config));
        return edited(
          doc,
          es.map((e, i) => ({ ...e, keys: [...[[], ['config'], ['config', 'run']][i % 3], ...e.keys] })),
        );
      }),
  },
  { weight: 1, arbitrary: jsonText(keyOf(['format', 'config', 'run', 'step']), false) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(...DEEP)
      .map((d) => `{"format":1,"version":"0","signature":"sig","step":0,"rngCounter":0,"schedule":"cosine","config":{"x":${d}}}`),
  },
);
const checkpointFile = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        fc.uniqueArray(
          fc.oneof(
            { weight: 6, arbitrary: fc.constantFrom('params.w', 'params.b', 'params.h.w', 'state.m.w', 'state.v.w', 'ema.w', 'ema.h.w') },
            { weight: 1, arbitrary: fc.constantFrom(...TENSOR_NAMES.filter((n) => n !== '__metadata__')) },
          ),
          { maxLength: 4 },
        ),
        metadataText,
        fc.constantFrom<'F32' | 'F64'>('F32', 'F64'),
        sometimes(damage, 4),
      )
      .map(([names, meta, dtype, d]) => {
        const tensors = Object.fromEntries(names.map((n, i) => [n, { shape: [i + 1], data: new Float64Array(i + 1).fill(i) }]));
        const bytes = encodeSafetensors(tensors, { fusediff: meta }, dtype);
        return d ? damaged(bytes, d) : bytes;
      }),
  },
  { weight: 1, arbitrary: safetensorsFile },
);

test('checkpoints: decodeCheckpoint (with and without the run-config codec) decodes or throws a typed error naming the file', (t) => {
  const count = tally();
  const source = 'fuzz-checkpoint.safetensors';
  fc.assert(
    fc.property(checkpointFile, fc.constantFrom(undefined, 'sig', 'other'), (bytes, expectSignature) => {
      const names = (m: string) => m.startsWith(source);
      const types = [CheckpointError, SafetensorsError];
      const plain = decodes(() => decodeCheckpoint(bytes, source, { expectSignature }), types, names, 'decodeCheckpoint');
      const typed = decodes(
        () => decodeCheckpoint(bytes, source, { configCodec: StoredConfig }),
        types,
        names,
        'decodeCheckpoint(StoredConfig)',
      );
      count.add(plain);
      count.add(typed);
      for (const r of [plain, typed]) {
        if (!r.ok) continue;
        // what the page and the trainer do with the trees next: copy them through flatten/unflatten
        for (const tree of [r.value.params, r.value.state, r.value.ema]) mapParams(tree as Params, (a) => a);
        assertUnpolluted('mapParams of the decoded trees');
        assertPlain(r.value, 'checkpoint', true);
      }
      if (plain.ok && expectSignature !== undefined)
        assert.ok(sameSignature(plain.value.signature, expectSignature), 'a checkpoint of another signature loaded with expectSignature');
    }),
    runs(1500),
  );
  count.show(t, 'decodeCheckpoint');
});

// ---- the playground's server ----------------------------------------------------------------------------------------

/** Sends one raw request line; the status (NaN when the connection closed without an answer) and the body. */
const raw = (requestLine: string): Promise<{ status: number; head: string; body: string }> =>
  new Promise((resolve, reject) => {
    const { port } = pg.server.address() as net.AddressInfo;
    const socket = net.connect(port, '127.0.0.1', () => socket.end(`${requestLine}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
    const chunks: Buffer[] = [];
    socket.setTimeout(5000, () => socket.destroy(new Error(`no answer in 5 s to ${JSON.stringify(requestLine.slice(0, 80))}`)));
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head, ...rest] = Buffer.concat(chunks).toString('latin1').split('\r\n\r\n');
      let body = rest.join('\r\n\r\n');
      if (/\r\ntransfer-encoding: chunked/i.test(head)) {
        // <hex size>\r\n<data>\r\n ... 0\r\n\r\n
        let out = '';
        for (let at = 0; ;) {
          const eol = body.indexOf('\r\n', at);
          const n = parseInt(body.slice(at, eol), 16);
          if (!(n > 0)) break;
          out += body.slice(eol + 2, eol + 2 + n);
          at = eol + 2 + n + 2;
        }
        body = out;
      }
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]), head: head.toLowerCase(), body });
    });
  });

const SERVED = ['/', '/index.html', '/main.js', '/style.css'];
const segment = fc.oneof(
  fc.constantFrom(
    '..',
    '.',
    '%2e%2e',
    '%2E%2e',
    '%2f',
    '%5c',
    '__proto__',
    'constructor',
    'prototype',
    'index.html',
    'main.js',
    'style.css',
  ),
  fc.constantFrom('%00', '%ff', '%', '%zz', 'é', '\\', ';', '?', '#', '@', ':', '[', ']', '//', '?__proto__[polluted]=1'),
  fc.string({ maxLength: 5 }),
);
const target = fc.oneof(
  { weight: 4, arbitrary: fc.array(segment, { maxLength: 6 }).map((s) => `/${s.join('/')}`) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      ...SERVED,
      ...['//a:b', '//[', '*', '/..', '/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', 'http://evil.example/', '//evil.example/x'],
      ...['/?constructor[prototype][polluted]=1', '/main.js?x=%00', `/${'a'.repeat(8000)}`, `/${'../'.repeat(2000)}`, '', ' '],
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 16 }) },
);
const method = fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST', 'OPTIONS', 'PUT', 'DELETE', 'TRACE', 'BREW', 'get');
const ERROR_BODIES = ['', 'bad request: the URL cannot be parsed\n', 'method not allowed\n', 'not found\n'];

test("the server: random request lines get 200 for the page's files only, else a plain-text error; it stays up", async (t) => {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(method, target, async (m, target) => {
      const r = await raw(`${m} ${target} HTTP/1.1`);
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      assertUnpolluted('a request');
      if (r.status === 200) {
        assert.ok(m === 'GET' || m === 'HEAD', `${m} ${target}: 200`);
        assert.ok(SERVED.includes(new URL(target, 'http://localhost').pathname), `${m} ${target}: 200 for a file not served`);
        return;
      }
      assert.ok([400, 404, 405, 414, 431].includes(r.status), `${m} ${target}: status ${r.status}`);
      assert.ok(ERROR_BODIES.includes(r.body), `${m} ${target}: the error body ${JSON.stringify(r.body.slice(0, 80))}`);
      if (r.body !== '') {
        assert.match(r.head, /content-type: text\/plain; charset=utf-8/);
        assert.match(r.head, /x-content-type-options: nosniff/);
      }
    }),
    runs(600),
  );
  t.diagnostic(`statuses: ${[...statuses].map(([s, n]) => `${s} x${n}`).join(', ')}`);
  const ok = await raw('GET / HTTP/1.1');
  assert.equal(ok.status, 200, 'the server still answers');
});

// ---- counterexamples the fuzz found (regression tests) --------------------------------------------------------------

test('found: a data.name that is a JSON object with a non-callable toString is a ConfigError, not a TypeError', () => {
  // String({ toString: 1 }) throws "Cannot convert object to primitive value"
  const hostile = JSON.parse('{"toString": 1}') as Json;
  const refused = (f: () => unknown, source: string) =>
    assert.throws(
      f,
      (e: Error) => e instanceof ConfigError && e.message.startsWith(source) && /config\.data\.name: expected dataset/.test(e.message),
    );
  refused(() => resolveConfig(undefined, { 'data.name': hostile }, 'eightGaussians'), 'config');
  refused(() => resolveConfig({ json: { data: { name: hostile } }, path: 'run.json' }, {}, 'eightGaussians'), 'run.json');
  refused(() => resolveConfig({ json: { data: { name: [{ toString: {} }] } }, path: 'run.json' }, {}, 'eightGaussians'), 'run.json');
  // a fine-tune's set in an experiment spec goes the same way
  refused(() => resolveConfig(undefined, { 'data.name': hostile }, 'eightGaussians', defaultConfig('eightGaussians')), 'config');
});

test('found: a model.kind nested 20,000 deep is a ConfigError, not a RangeError from printing it', () => {
  // the refusal printed the value with JSON.stringify, which overflows the stack on it
  for (const kind of [JSON.parse(deep(20_000, 'config')), JSON.parse(deep(20_000))] as Json[])
    assert.throws(
      () => resolveConfig(undefined, { 'model.kind': kind }, 'eightGaussians'),
      (e: Error) => e instanceof ConfigError && /config\.model\.kind: expected "mlp" \| "unet", got (an array|object)/.test(e.message),
    );
  assert.throws(
    () => resolveConfig(undefined, { 'model.kind': 'x'.repeat(10_000) }, 'eightGaussians'),
    (e: Error) => e instanceof ConfigError && e.message.includes('got "xxxx') && e.message.length < 1000,
  );
});

test('found: a prototype key in a --config file is refused naming the file', () => {
  for (const json of ['{"__proto__": {"polluted": 1}}', '{"train": {"constructor": {"prototype": {"polluted": 1}}}}']) {
    assert.throws(
      () => resolveConfig({ json: JSON.parse(json), path: 'run.json' }, {}, 'eightGaussians'),
      (e: Error) => e instanceof ConfigError && e.message.startsWith('run.json: config.') && /is not a config field/.test(e.message),
    );
  }
  assertUnpolluted('a --config file with prototype keys');
});

test('spec set and sampleSet keys through __proto__, constructor or prototype are refused by resolveConfig, naming the key', () => {
  const spec = decodeSpec(
    JSON.parse(
      JSON.stringify({
        ...defaultSpec,
        datasets: [
          {
            ...defaultSpec.datasets[0],
            finetunes: [{ name: 'SP', set: { 'constructor.prototype.polluted': 1 } }],
            sampleSet: { '__proto__.polluted': 1, 'sample.count': 10 },
          },
        ],
      }),
    ),
    'spec.json',
  );
  const [d] = spec.datasets;
  const stage1 = resolveConfig(undefined, { ...(d.stage1Set as Record<string, Json>), 'data.name': d.dataset }, d.dataset);
  assert.throws(
    () => resolveConfig(undefined, { backend: 'auto', ...(d.sampleSet as Record<string, Json>) }, d.dataset, stage1),
    (e: Error) => e instanceof ConfigError && e.message.startsWith("__proto__.polluted: '__proto__' is not a config field"),
  );
  assert.throws(
    () => resolveConfig(undefined, { ...(d.finetunes[0].set as Record<string, Json>) }, d.dataset, finetuneBase(stage1)),
    (e: Error) => e instanceof ConfigError && e.message.startsWith("constructor.prototype.polluted: 'constructor' is not a config field"),
  );
  // a key that is exactly __proto__ (JSON.parse makes it an own key; a spread keeps it)
  assert.throws(
    () => resolveConfig(undefined, JSON.parse('{"__proto__": {"polluted": 1}}') as Record<string, Json>, 'eightGaussians'),
    (e: Error) => e instanceof ConfigError && e.message.startsWith("__proto__: '__proto__' is not a config field"),
  );
  assertUnpolluted('spec sets with prototype keys');
});

/** A checkpoint file of `tensors` (names -> length) whose metadata is `meta` (JSON text). */
const checkpointBytes = (meta: string, names: string[] = ['params.w']) =>
  encodeSafetensors(Object.fromEntries(names.map((n) => [n, { shape: [2], data: new Float64Array([1, 2]) }])), { fusediff: meta });

test('found: checkpoint metadata holding __proto__ is refused naming the file, so it cannot bypass the config codec', () => {
  // an older run's config (no keepEvery) makes io-ts copy the object with Object.assign, and the own "__proto__" key of
  // JSON.parse then becomes the copy's prototype: `init` was read from it, unvalidated (from: 42 is no string)
  const head = '"format":1,"version":"0","signature":"s","step":0,"rngCounter":0,"schedule":"cosine"';
  const with_ = (extra: string) => `{${head},"config":{"run":${JSON.stringify(oldRun)}${extra}}}`;
  const hostile = with_(',"__proto__":{"init":{"from":42}}');
  const refused = (bytes: Uint8Array, at: string) => {
    for (const opts of [{}, { configCodec: StoredConfig }])
      assert.throws(
        () => decodeCheckpoint(bytes, 'ck.safetensors', opts),
        (e: Error) =>
          e instanceof CheckpointError && e.message.startsWith('ck.safetensors: invalid checkpoint metadata: ') && e.message.includes(at),
      );
  };
  refused(checkpointBytes(hostile), "metadata.config.__proto__: '__proto__' is not a metadata field");
  refused(checkpointBytes(hostile.replace('"config"', '"__proto__":{"step":1},"config"')), 'metadata.__proto__');
  refused(checkpointBytes(with_(',"x":{"constructor":{"prototype":{"polluted":1}}}')), 'metadata.config.x.constructor');
  refused(checkpointBytes(with_(',"x":[0,{"prototype":1}]')), 'metadata.config.x[1].prototype');
  // the same metadata without the key loads
  const ok = decodeCheckpoint(checkpointBytes(with_('')), 'ck.safetensors', { configCodec: StoredConfig });
  assert.equal(ok.config.init, undefined);
  assert.equal(ok.config.run.train.keepEvery, 0);
});

test('found: a tensor named params.__proto__.x or params.constructor.prototype.x is refused naming the file', () => {
  const meta = JSON.stringify(metadataOf({}));
  for (const name of ['params.__proto__.polluted', 'params.constructor.prototype.polluted', 'ema.a.prototype', 'state.constructor']) {
    try {
      assert.throws(
        () => {
          // before: decoded, and copying the tree (mapParams -> dsl/tree.ts unflatten, `node[k] ??= {}`) wrote to Object.prototype
          const ck = decodeCheckpoint(checkpointBytes(meta, [name, 'params.w']), 'ck.safetensors');
          for (const tree of [ck.params, ck.state, ck.ema]) mapParams(tree, (a) => a);
        },
        (e: Error) =>
          e instanceof CheckpointError &&
          e.message.startsWith(`ck.safetensors: tensor '${name}' has the path segment`) &&
          /prototype/.test(e.message),
      );
      assertUnpolluted(name);
    } finally {
      delete (Object.prototype as { polluted?: unknown }).polluted;
    }
  }
});

test('decodeCheckpoint of a valid file still loads, and a SignatureMismatchError names the file', () => {
  const meta = JSON.stringify(metadataOf({ run: defaultConfig('eightGaussians') }));
  const ck = decodeCheckpoint(checkpointBytes(meta, ['params.a.w', 'ema.a.w']), 'ck.safetensors', { configCodec: StoredConfig });
  assert.deepEqual(Object.keys(ck.params), ['a']);
  assertPlain(ck, 'checkpoint', true);
  assert.throws(
    () => decodeCheckpoint(checkpointBytes(meta), 'ck.safetensors', { expectSignature: 'other' }),
    (e: Error) => e instanceof SignatureMismatchError && e.message.startsWith('ck.safetensors'),
  );
});
