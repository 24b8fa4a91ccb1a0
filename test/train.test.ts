// The trainer as a library: exact (bit-for-bit) resume of stage 1 and of fine-tunes, refusals (changed config,
// changed stage 1, other model, corrupt files), the non-finite-loss stop, the stopper, and config validation.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  CheckpointError,
  loadCheckpoint,
  saveCheckpoint,
  SafetensorsError,
  SignatureMismatchError,
  type Checkpoint,
} from '../storage/checkpoint.ts';
import { flattenParams, type Params } from '../dsl/params.ts';
import { ConfigError, decodeConfig, defaultConfig, resolveConfig, type Json, type RunConfig } from '../runs/config.ts';
import { batchSource, setupRun } from '../runs/setup.ts';
import { StoredConfig, train, TrainingError } from '../runs/trainer.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-train-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => path.join(dir, name);
const sha256 = (p: string) => createHash('sha256').update(fs.readFileSync(p)).digest('hex');

const tiny2d = (over: Record<string, Json> = {}): RunConfig =>
  resolveConfig(
    undefined,
    {
      'data.name': 'eightGaussians',
      'model.hidden': 16,
      'model.depth': 2,
      'model.timeDim': 8,
      'model.classDim': 4,
      'train.batchSize': 32,
      backend: 'webasm',
      ...over,
    },
    'eightGaussians',
  );
const tinyMnist = (over: Record<string, Json> = {}): RunConfig =>
  resolveConfig(
    undefined,
    {
      'data.name': 'mnist16',
      'data.conditional': true,
      'model.kind': 'mlp',
      'model.hidden': 32,
      'model.depth': 2,
      'model.timeDim': 8,
      'model.classDim': 4,
      'train.batchSize': 16,
      backend: 'webasm',
      ...over,
    },
    'mnist16',
  );
const withSteps = (c: RunConfig, steps: number): RunConfig => ({ ...c, train: { ...c.train, steps } });
const load = (p: string): Checkpoint<StoredConfig> => loadCheckpoint(p, { configCodec: StoredConfig });

/** Element-for-element identity (Object.is, so -0 and NaN count) of two parameter trees. */
const assertTreesIdentical = (a: Params, b: Params, what: string) => {
  const fa = flattenParams(a);
  const fb = new Map(flattenParams(b));
  assert.ok(fa.length > 0, `${what}: empty tree`);
  assert.deepEqual([...fb.keys()].sort(), fa.map(([k]) => k).sort(), `${what}: different tensor names`);
  for (const [k, x] of fa) {
    const y = fb.get(k)!;
    assert.deepEqual([...y.shape], [...x.shape], `${what}.${k}: shape`);
    for (let i = 0; i < x.data.length; i++)
      if (!Object.is(x.data[i], y.data[i])) assert.fail(`${what}.${k}[${i}]: ${x.data[i]} !== ${y.data[i]}`);
  }
};
const treesDiffer = (a: Params, b: Params): boolean => {
  const fb = new Map(flattenParams(b));
  return flattenParams(a).some(([k, x]) => x.data.some((v, i) => !Object.is(v, fb.get(k)!.data[i])));
};
const assertSameCheckpoint = (pa: string, pb: string) => {
  const a = load(pa);
  const b = load(pb);
  assert.equal(b.step, a.step);
  assert.equal(b.rngCounter, a.rngCounter);
  assert.equal(b.signature, a.signature);
  assert.deepEqual(b.config, a.config);
  assertTreesIdentical(a.params, b.params, 'params');
  assertTreesIdentical(a.state, b.state, 'state');
  assertTreesIdentical(a.ema, b.ema, 'ema');
  // Adam keeps m and v for every parameter
  assert.ok(flattenParams(a.state).some(([k]) => k.startsWith('m.')) && flattenParams(a.state).some(([k]) => k.startsWith('v.')));
};

/** Trains 2N steps in one go to A, and N steps to B then resumes B to 2N; both must agree bit for bit. */
const resumeMatches = async (config: RunConfig, N: number, tag: string, from?: string) => {
  const a = file(`${tag}-A.safetensors`);
  const b = file(`${tag}-B.safetensors`);
  const full = withSteps(config, 2 * N);
  const rA = await train({ config: full, checkpoint: a, from });
  assert.equal(rA.step, 2 * N);
  assert.equal(rA.losses.length, 2 * N);
  const rB1 = await train({ config: withSteps(config, N), checkpoint: b, from });
  assert.equal(rB1.step, N);
  const half = load(b);
  assert.equal(half.step, N);
  assert.ok(
    treesDiffer(half.params, load(a).params),
    'the second half of training must change the weights (else the comparison proves nothing)',
  );
  const rB2 = await train({ config: full, checkpoint: b, resume: true, from });
  assert.equal(rB2.startStep, N);
  assert.equal(rB2.step, 2 * N);
  assert.deepEqual(rB2.losses, rA.losses.slice(N), 'the resumed steps see the same batches and noise, so the same losses');
  assertSameCheckpoint(a, b);
  return { a, b };
};

describe('exact resume', () => {
  test('2-D stage 1: 2N steps at once == N steps + resume to 2N (params, Adam state, EMA, step)', async () => {
    await resumeMatches(withSteps(tiny2d(), 0), 4, 'gauss');
  });

  test('conditional MNIST-16 stage 1 (epoch-based batches): bit-exact resume', async () => {
    await resumeMatches(tinyMnist(), 3, 'mnist');
  });

  test('MNIST batches are a pure function of the step, across an epoch boundary', () => {
    // batch 4000 of the 8000 training digits: 2 steps per epoch, so step 3 is the first of epoch 1
    const s = setupRun(tinyMnist({ 'train.batchSize': 4000 }));
    const seq = batchSource(s);
    const seqBatches = [1, 2, 3, 4, 5].map((k) => seq(k));
    const fresh = batchSource(s); // what a run resumed at step 2 (mid-epoch) and at step 4 uses
    for (const k of [3, 4, 5]) {
      const b = fresh(k);
      assert.deepEqual(b.x0.data, seqBatches[k - 1].x0.data, `step ${k}: images`);
      assert.deepEqual(b.c!.data, seqBatches[k - 1].c!.data, `step ${k}: labels`);
    }
    // each epoch visits every training digit once: the label counts of an epoch's two batches are the split's
    const train = s.dataset.kind === 'image' ? s.dataset.load({ split: 'train', testFraction: 0.2, seed: 0 }) : assert.fail('mnist');
    const counts = (ls: Float64Array[]) => {
      const n = new Array(10).fill(0);
      for (const l of ls) for (const v of l) n[v]++;
      return n;
    };
    const want = counts([train.labels!]);
    assert.deepEqual(counts([seqBatches[0].c!.data as Float64Array, seqBatches[1].c!.data as Float64Array]), want);
    assert.deepEqual(counts([seqBatches[2].c!.data as Float64Array, seqBatches[3].c!.data as Float64Array]), want);
    // and a new epoch is a new order
    assert.notDeepEqual(seqBatches[2].c!.data, seqBatches[0].c!.data);
  });

  test(
    'resume refuses a changed objective or optimiser config (TrainingError naming the checkpoint), ' +
      'and another model (SignatureMismatchError)',
    async () => {
      const ck = file('refuse.safetensors');
      await train({ config: tiny2d({ 'train.steps': 2 }), checkpoint: ck });
      const before = sha256(ck);
      // the error names each differing path with both values, and nothing else of the config
      const cases: [Record<string, Json>, string][] = [
        [{ 'objective.minSnrGamma': 5 }, 'objective.minSnrGamma: saved 0, requested 5'],
        [{ 'train.lr': 0.01 }, 'train.lr: saved 0.002, requested 0.01'],
        [{ prediction: 'eps' }, 'prediction: saved "v", requested "eps"'],
      ];
      for (const [over, line] of cases) {
        await assert.rejects(
          train({ config: tiny2d({ 'train.steps': 4, ...over }), checkpoint: ck, resume: true }),
          (e: Error) =>
            e instanceof TrainingError &&
            e.message.includes(ck) &&
            /different run config; it differs at:\n {2}/.test(e.message) &&
            e.message
              .split('\n')
              .filter((l) => l.startsWith('  '))
              .join('\n') === `  ${line}`,
          JSON.stringify(over),
        );
      }
      assert.equal(sha256(ck), before);
      await assert.rejects(
        train({ config: tiny2d({ 'train.steps': 4, 'model.hidden': 24 }), checkpoint: ck, resume: true }),
        (e: Error) =>
          e instanceof SignatureMismatchError &&
          e.message.includes(ck) &&
          e.found !== e.expected &&
          // the differing parameters by name with both shapes, not two whole signatures
          e.differences.includes('model hidden: saved 16, requested 24') &&
          e.differences.includes('hidden.hidden0.w: saved [14,16], requested [14,24]') &&
          e.message.includes('\n  out.w: saved [16,2], requested [24,2]') &&
          !e.message.includes(e.found),
      );
      // what may change: steps, checkpointEvery, sample settings
      const r = await train({
        config: tiny2d({ 'train.steps': 3, 'train.checkpointEvery': 7, 'sample.steps': 10 }),
        checkpoint: ck,
        resume: true,
      });
      assert.deepEqual([r.startStep, r.step], [2, 3]);
      assert.notEqual(sha256(ck), before);
    },
  );
});

describe('fine-tune (sp)', () => {
  const stage1 = file('stage1.safetensors');
  const ftConfig = async () => {
    if (!fs.existsSync(stage1)) await train({ config: tiny2d({ 'train.steps': 3 }), checkpoint: stage1 });
    return resolveConfig(undefined, { 'objective.kind': 'sp', 'train.lr': 2e-4 }, 'eightGaussians', load(stage1).config.run);
  };

  test('bit-exact resume of an sp fine-tune started with from', async () => {
    const config = await ftConfig();
    const { b } = await resumeMatches(config, 3, 'sp', stage1);
    const c = load(b);
    assert.equal(c.config.run.objective.kind, 'sp');
    assert.deepEqual(c.config.init, { from: stage1, sha256: sha256(stage1), weights: 'ema', step: 3 });
  });

  test('a fine-tune whose stage-1 file changed (or vanished) since it started is not resumed', async () => {
    const config = await ftConfig();
    const s1 = file('stage1-copy.safetensors');
    fs.copyFileSync(stage1, s1);
    const ck = file('sp-changed.safetensors');
    await train({ config: withSteps(config, 2), checkpoint: ck, from: s1 });
    const ckSha = sha256(ck);
    const orig = load(s1);
    saveCheckpoint(s1, { ...orig, step: orig.step + 1 }); // same model, other bytes
    await assert.rejects(
      train({ config: withSteps(config, 4), checkpoint: ck, resume: true, from: s1 }),
      (e: Error) =>
        e instanceof TrainingError && e.message.includes(s1) && /changed/.test(e.message) && /sha256 [0-9a-f]{64}/.test(e.message),
    );
    fs.rmSync(s1);
    await assert.rejects(
      train({ config: withSteps(config, 4), checkpoint: ck, resume: true }),
      (e: Error) => e instanceof TrainingError && e.message.includes(s1) && /missing/.test(e.message),
    );
    assert.equal(sha256(ck), ckSha, 'the fine-tune checkpoint is left alone');
  });

  test('sp without a stage-1 checkpoint is refused', async () => {
    const config = await ftConfig();
    await assert.rejects(
      train({ config, checkpoint: file('sp-nofrom.safetensors') }),
      (e: Error) => e instanceof TrainingError && /--from/.test(e.message),
    );
    assert.equal(fs.existsSync(file('sp-nofrom.safetensors')), false);
  });
});

describe('signature mismatch', () => {
  test('from = another model: SignatureMismatchError naming the differing parameters, file unchanged, nothing written', async () => {
    const other = file('other-model.safetensors');
    await train({ config: tiny2d({ 'train.steps': 1, 'model.hidden': 24 }), checkpoint: other });
    const before = sha256(other);
    const out = file('ft-mismatch.safetensors');
    const config = tiny2d({ 'objective.kind': 'sp', 'train.steps': 2 });
    const expected = setupRun(config).model.signature;
    await assert.rejects(
      train({ config, checkpoint: out, from: other }),
      (e: Error) =>
        e instanceof SignatureMismatchError &&
        e.message.includes(other) &&
        e.expected === expected &&
        e.found === load(other).signature &&
        e.message.includes('\n  hidden.hidden1.w: saved [24,24], requested [16,16]') &&
        e.message.includes('\n  model hidden: saved 24, requested 16'),
    );
    assert.equal(sha256(other), before);
    assert.equal(fs.existsSync(out), false);
  });

  test('resume into a run dir holding another model: refused, file unchanged', async () => {
    const ck = file('resume-other.safetensors');
    await train({ config: tiny2d({ 'train.steps': 1, 'model.depth': 3 }), checkpoint: ck });
    const before = sha256(ck);
    await assert.rejects(train({ config: tiny2d({ 'train.steps': 2 }), checkpoint: ck, resume: true }), SignatureMismatchError);
    assert.equal(sha256(ck), before);
  });
});

describe('non-finite loss', () => {
  test('stops with a TrainingError naming the step; the checkpoint of the last finite step is kept and loads', async () => {
    const ck = file('nan.safetensors');
    const seen: number[] = [];
    let err: Error | undefined;
    try {
      await train({
        config: tiny2d({ 'train.steps': 20, 'train.lr': 1e30, 'train.checkpointEvery': 1 }),
        checkpoint: ck,
        onStep: ({ step }) => seen.push(step),
      });
    } catch (e) {
      err = e as Error;
    }
    assert.ok(err instanceof TrainingError, `expected a TrainingError, got ${err}`);
    assert.ok(seen.length >= 1 && seen.length < 20, `finite steps: ${seen}`);
    const failing = seen.length + 1;
    assert.match(err.message, new RegExp(`stopped at step ${failing}\\b`));
    assert.match(err.message, /not finite/);
    assert.ok(err.message.includes(ck));
    const c = load(ck);
    assert.equal(c.step, failing - 1);
    for (const tree of [c.params, c.state, c.ema])
      for (const [k, a] of flattenParams(tree)) assert.ok(a.data.every(Number.isFinite), `${k} has non-finite values`);
  });
});

describe('stopper', () => {
  test('stop set during a step ends the run after that step and saves it', async () => {
    const ck = file('stop.safetensors');
    const stopper = { stop: false };
    const r = await train({
      config: tiny2d({ 'train.steps': 50 }),
      checkpoint: ck,
      stopper,
      onStep: ({ step }) => void (step === 3 && (stopper.stop = true)),
    });
    assert.deepEqual([r.interrupted, r.step], [true, 3]);
    assert.equal(load(ck).step, 3);
  });

  test('stop set from a timer (as the SIGINT handler does) is seen: the loop yields to the event loop', async () => {
    const stopper = { stop: false };
    setTimeout(() => (stopper.stop = true), 200).unref();
    const t0 = performance.now();
    const r = await train({
      config: tiny2d({ 'train.steps': 1_000_000, 'train.checkpointEvery': 1_000_000 }),
      checkpoint: file('stop-timer.safetensors'),
      stopper,
      onStep: ({ step }) => {
        if (performance.now() - t0 > 5000)
          throw new Error(
            `a 200 ms timer had not run after 5 s (step ${step}): ` +
              `the training loop never yields to the event loop, so Ctrl-C cannot stop it`,
          );
      },
    });
    assert.equal(r.interrupted, true);
    assert.ok(r.step >= 1 && r.step < 1_000_000);
  });
});

describe('config errors', () => {
  const fails = (json: unknown, overrides: Record<string, Json>, ...patterns: (RegExp | string)[]) =>
    assert.throws(
      () => resolveConfig({ json, path: 'runs/bad.json' }, overrides, 'eightGaussians'),
      (e: Error) => {
        assert.ok(e instanceof ConfigError, `${e}`);
        assert.ok(e.message.includes('runs/bad.json'), e.message);
        for (const p of patterns)
          assert.ok(typeof p === 'string' ? e.message.includes(p) : p.test(e.message), `${e.message}\n  lacks ${p}`);
        return true;
      },
    );

  test('a wrongly typed value names the path and the expected type', () => {
    fails({ train: { lr: 'fast' } }, {}, 'config.train.lr', 'positive number', '"fast"');
    fails({ train: { steps: 1.5 } }, {}, 'config.train.steps', 'non-negative integer');
    fails({ train: { emaDecay: 1 } }, {}, 'config.train.emaDecay', 'number in [0, 1)');
  });

  test('an unknown key is named, with the valid ones', () => {
    fails({ train: { lrr: 1 } }, {}, "config.train: unknown key 'lrr'", /expected one of: .*\blr\b/, 'batchSize');
    fails(
      { sampel: {} },
      {},
      "unknown key 'sampel'",
      /expected one of: data, model, schedule, prediction, objective, train, sample, backend/,
    );
  });

  test('unknown dataset, objective and backend list the valid names', () => {
    for (const [json, over] of [
      [{ data: { name: 'cifar' } }, {}],
      [{}, { 'data.name': 'cifar' }],
    ] as [unknown, Record<string, Json>][])
      fails(
        json,
        over,
        'config.data.name',
        '"cifar"',
        '"mnist16"',
        '"mnist28"',
        '"eightGaussians"',
        '"grid25"',
        '"checkerboard"',
        '"twoMoons"',
      );
    fails({ objective: { kind: 'l1' } }, {}, 'config.objective.kind', '"mse" | "sp"', '"l1"');
    fails({ backend: 'tpu' }, {}, 'config.backend', '"headlessgl"', '"webgl2"', '"webasm"', '"cpu"', '"auto"');
  });

  test('a non-object file, and decodeConfig on its own', () => {
    fails([1, 2], {}, 'must be a JSON object', 'an array');
    assert.deepEqual(decodeConfig(defaultConfig('mnist16')), defaultConfig('mnist16'));
    assert.throws(
      () => decodeConfig({ ...defaultConfig('mnist16'), prediction: 'score' }, 'x.json'),
      (e: Error) =>
        e instanceof ConfigError && /^x\.json is not a valid run config/.test(e.message) && /config\.prediction/.test(e.message),
    );
  });
});

describe('corrupt checkpoints on the training path', () => {
  test('a truncated or header-corrupted checkpoint: loadCheckpoint and resume fail naming the file, which is left as it is', async () => {
    const good = file('good.safetensors');
    await train({ config: tiny2d({ 'train.steps': 2 }), checkpoint: good });
    const bytes = fs.readFileSync(good);
    const config = tiny2d({ 'train.steps': 4 });

    const cut = file('cut.safetensors');
    fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const bad = file('flipped.safetensors');
    const flipped = Buffer.from(bytes);
    flipped[8] ^= 0xff; // the header's opening '{'
    flipped[9] ^= 0x20;
    fs.writeFileSync(bad, flipped);

    for (const p of [cut, bad]) {
      const before = sha256(p);
      const clear = (e: Error) =>
        e instanceof SafetensorsError && e.message.startsWith(`${p}: `) && /truncated|not valid|does not start/.test(e.message);
      assert.throws(() => loadCheckpoint(p), clear);
      await assert.rejects(train({ config, checkpoint: p, resume: true }), clear);
      assert.equal(sha256(p), before, 'a failed resume must not overwrite the file');
    }
    // a missing checkpoint with resume starts fresh; a missing stage 1 is a CheckpointError naming it
    const r = await train({ config: tiny2d({ 'train.steps': 1 }), checkpoint: file('fresh.safetensors'), resume: true });
    assert.deepEqual([r.startStep, r.step], [0, 1]);
    const missing = file('no-such-stage1.safetensors');
    await assert.rejects(
      train({ config: tiny2d({ 'objective.kind': 'sp', 'train.steps': 1 }), checkpoint: file('x.safetensors'), from: missing }),
      (e: Error) => e instanceof CheckpointError && e.message.includes(missing),
    );
  });
});

test('config paths refuse __proto__, prototype and constructor (--set, --config); Object.prototype is untouched', () => {
  const refused = (f: () => unknown, key: string) =>
    assert.throws(f, (e: Error) => e instanceof ConfigError && e.message.includes(`'${key}' is not a config field`));
  refused(() => resolveConfig(undefined, { '__proto__.toString': 1 }, 'eightGaussians'), '__proto__');
  refused(() => resolveConfig(undefined, { 'constructor.prototype.polluted': 1 }, 'eightGaussians'), 'constructor');
  refused(() => resolveConfig(undefined, { 'train.prototype': 1 }, 'eightGaussians'), 'prototype');
  // JSON.parse makes "__proto__" an own key: merging it into the config would set the config object's prototype
  refused(
    () => resolveConfig({ json: JSON.parse('{"train": {"__proto__": {"lr": 5}}}'), path: 'c.json' }, {}, 'eightGaussians'),
    '__proto__',
  );
  refused(() => resolveConfig({ json: JSON.parse('{"__proto__": {"polluted": 1}}'), path: 'c.json' }, {}, 'eightGaussians'), '__proto__');
  assert.equal(typeof ({} as { toString: unknown }).toString, 'function');
  assert.equal(({} as { polluted?: unknown }).polluted, undefined);
  assert.equal((Object.prototype as { polluted?: unknown }).polluted, undefined);
});
