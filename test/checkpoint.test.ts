// Checkpoints: the safetensors codec (round trips, alignment, strict validation) and checkpoint files (metadata
// codec, signature check, atomic writes).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, mock, test } from 'node:test';
import * as t from 'io-ts';
import {
  CheckpointError,
  FUSEDIFF_VERSION,
  loadCheckpoint,
  saveCheckpoint,
  SignatureMismatchError,
  type CheckpointInput,
} from '../storage/checkpoint.ts';
import { decodeSafetensors, encodeSafetensors, SafetensorsError } from '../storage/safetensors.ts';
import type { NDArray } from '../core/ndarray.ts';
import { flattenParams, initNormal, ndarray, type Params } from '../dsl/params.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-ckpt-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const f32 = (a: NDArray): NDArray => ({ shape: a.shape, data: a.data.map(Math.fround) });
const bitsEqual = (a: NDArray, b: NDArray): void => {
  assert.deepEqual([...b.shape], [...a.shape]);
  assert.deepEqual(
    new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength),
    new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength),
  );
};
const treesBitsEqual = (a: Params, b: Params): void => {
  const fa = flattenParams(a);
  const fb = new Map(flattenParams(b));
  assert.deepEqual([...fb.keys()].sort(), fa.map(([k]) => k).sort());
  for (const [k, v] of fa) bitsEqual(v, fb.get(k)!);
};

/** Header JSON and data-section start of safetensors bytes. */
const headerOf = (bytes: Uint8Array): { header: Record<string, any>; dataStart: number } => {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))), dataStart: 8 + n };
};
/** Safetensors bytes with a hand-written header and data section. */
const rawFile = (header: unknown, data: Uint8Array | number = 0): Uint8Array => {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
};

describe('safetensors', () => {
  const tensors = {
    'b.bias': ndarray([3], [1 / 3, -2.5, 1e-30]),
    'a.w': initNormal([4, 5], 1, 7),
    scalar: ndarray([], [Math.PI]),
    empty: ndarray([0, 3], []),
    special: ndarray([5], [NaN, Infinity, -Infinity, -0, 3.4e38 * 10]),
  };

  test('F32: sorted names, 8-byte aligned data, values rounded to nearest f32, bit-exact for f32 values', () => {
    const bytes = encodeSafetensors(tensors, { hello: 'world' });
    const { header, dataStart } = headerOf(bytes);
    assert.equal(dataStart % 8, 0);
    assert.deepEqual(header.__metadata__, { hello: 'world' });
    assert.deepEqual(
      Object.keys(header).filter((k) => k !== '__metadata__'),
      ['a.w', 'b.bias', 'empty', 'scalar', 'special'],
    );
    assert.deepEqual(header['a.w'], { dtype: 'F32', shape: [4, 5], data_offsets: [0, 80] });
    assert.deepEqual(header.empty.data_offsets, [92, 92]);
    const d = decodeSafetensors(bytes);
    assert.deepEqual(d.metadata, { hello: 'world' });
    assert.deepEqual(Object.keys(d.tensors), ['a.w', 'b.bias', 'empty', 'scalar', 'special']);
    for (const [k, v] of Object.entries(tensors)) bitsEqual(f32(v), d.tensors[k]);
    assert.ok(Object.is(d.tensors.special.data[3], -0));
    // already-f32 values survive a second round trip bit for bit
    const again = decodeSafetensors(encodeSafetensors(d.tensors, d.metadata));
    for (const k of Object.keys(tensors)) bitsEqual(d.tensors[k], again.tensors[k]);
  });

  test('F64: exact', () => {
    const d = decodeSafetensors(encodeSafetensors(tensors, {}, 'F64'));
    assert.deepEqual(d.metadata, {});
    assert.equal(d.dtypes['a.w'], 'F64');
    for (const [k, v] of Object.entries(tensors)) bitsEqual(v, d.tensors[k]);
  });

  test('reads F16 and BF16 and an unaligned data section', () => {
    // 1.0, -2.0, 65504 in F16; 1.0, -2.0 in BF16
    const h16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x7bff]).buffer);
    const bf = new Uint8Array(new Uint16Array([0x3f80, 0xc000]).buffer);
    const file = rawFile(
      { x: { dtype: 'F16', shape: [3], data_offsets: [0, 6] }, y: { dtype: 'BF16', shape: [2], data_offsets: [6, 10] } },
      new Uint8Array([...h16, ...bf]),
    );
    const d = decodeSafetensors(file);
    assert.deepEqual([...d.tensors.x.data], [1, -2, 65504]);
    assert.deepEqual([...d.tensors.y.data], [1, -2]);
  });

  test('truncated files', () => {
    const bytes = encodeSafetensors(tensors, {});
    assert.throws(
      () => decodeSafetensors(bytes.subarray(0, 5), { source: 'm.safetensors' }),
      /m\.safetensors: file is 5 bytes, shorter than the 8-byte header-length prefix/,
    );
    assert.throws(
      () => decodeSafetensors(bytes.subarray(0, 40)),
      (e: Error) => e instanceof SafetensorsError && /header length \d+ \(bytes 0-7\) exceeds the 32 bytes/.test(e.message),
    );
    assert.throws(
      () => decodeSafetensors(bytes.subarray(0, bytes.length - 4)),
      /tensor 'special' has data_offsets \[\d+, \d+\] beyond the \d+-byte data section.*truncated/,
    );
  });

  test('corrupted headers', () => {
    const bytes = encodeSafetensors(tensors, {});
    const bad = bytes.slice();
    bad[8 + 1] = 0x7d; // '{"a.w"' becomes '{}a.w"'
    assert.throws(() => decodeSafetensors(bad), /header \(bytes 8-\d+\) is not valid JSON/);
    const huge = bytes.slice();
    new DataView(huge.buffer).setBigUint64(0, 1n << 60n, true);
    assert.throws(() => decodeSafetensors(huge), /header length 1152921504606846976 \(bytes 0-7\) exceeds/);
    const notUtf8 = rawFile({}, 0);
    notUtf8[9] = 0xff;
    assert.throws(() => decodeSafetensors(notUtf8), /not valid UTF-8/);
    assert.throws(() => decodeSafetensors(rawFile([1, 2])), /does not start with '\{'/);
  });

  test('invalid tensor entries say which tensor and what is wrong', () => {
    const dec =
      (h: unknown, data: number | Uint8Array = 0) =>
      () =>
        decodeSafetensors(rawFile(h, data), { source: 'f' });
    const ok = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
    assert.equal(decodeSafetensors(rawFile({ x: ok }, 8)).tensors.x.data.length, 2);
    assert.throws(dec({ x: { ...ok, dtype: 'F33' } }, 8), /f: tensor 'x' has unknown dtype 'F33'/);
    assert.throws(dec({ x: { ...ok, dtype: 'I64', shape: [1] } }, 8), /tensor 'x' has dtype I64, which fusediff does not read/);
    assert.throws(dec({ x: { ...ok, shape: [3] } }, 8), /tensor 'x': shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] span 8/);
    assert.throws(dec({ x: { ...ok, shape: [2, 'a'] } }, 8), /tensor 'x'\.shape\.1: expected non-negative integer, got "a"/);
    assert.throws(dec({ x: { dtype: 'F32', shape: [2] } }, 8), /tensor 'x'\.data_offsets: expected .*, got undefined/);
    assert.throws(dec({ x: { ...ok, data_offsets: [8, 0] } }, 8), /data_offsets \[8, 0\] with begin after end/);
    assert.throws(
      dec({ x: ok, y: { ...ok, data_offsets: [4, 12] } }, 12),
      /tensor 'y' \(data_offsets \[4, 12\]\) overlaps tensor 'x', which ends at 8/,
    );
    assert.throws(
      dec({ x: ok, y: { ...ok, data_offsets: [12, 20] } }, 20),
      /bytes \[8, 12\) of the data section belong to no tensor \(gap before 'y'\)/,
    );
    assert.throws(dec({ x: ok }, 12), /bytes \[8, 12\) at the end of the data section belong to no tensor/);
    assert.throws(dec({ __metadata__: { a: 1 } }), /__metadata__\.a: expected string, got 1/);
  });

  test('encode rejects what it cannot write', () => {
    assert.throws(
      () => encodeSafetensors({ x: { shape: [3], data: new Float64Array(2) } }),
      /tensor 'x' has 2 values but shape \[3\] holds 3/,
    );
    assert.throws(() => encodeSafetensors({ x: ndarray([1], [1]) }, {}, 'F16' as never), /dtype 'F16' is not writable/);
    assert.throws(() => encodeSafetensors({ x: ndarray([1], [1]) }, { a: 1 as never }), /metadata 'a' is a number/);
  });
});

const model: Params = {
  hidden: {
    hidden0: { w: initNormal([2, 8], 0.5, 1), b: initNormal([8], 0.1, 2) },
    hidden1: { w: initNormal([8, 8], 0.5, 3), b: initNormal([8], 0.1, 4) },
  },
  out: { w: initNormal([8, 2], 0.5, 5) },
};
const mapTree = (p: Params, f: (x: number) => number): Params =>
  Object.fromEntries(
    Object.entries(p).map(([k, v]) => [
      k,
      'data' in v && v.data instanceof Float64Array ? { shape: v.shape, data: v.data.map(f) } : mapTree(v as Params, f),
    ]),
  ) as Params;
const roundF32 = (p: Params) => mapTree(p, Math.fround);
const ckpt = (over: Partial<CheckpointInput> = {}): CheckpointInput => ({
  params: roundF32(model),
  state: { m: roundF32(mapTree(model, (x) => x / 10)), v: roundF32(mapTree(model, (x) => x * x)) },
  ema: roundF32(mapTree(model, (x) => x * 0.99)),
  config: { model: { hidden: [8, 8] }, lr: 1e-3, dataset: '8gaussians', cond: null, flags: [true, false] },
  step: 1234,
  rngCounter: 98765,
  schedule: 'cosine',
  signature: 'mlp-denoiser:2-8-8-2',
  ...over,
});
const tmpLeftovers = () => fs.readdirSync(dir).filter((f) => f.includes('.tmp-'));

describe('checkpoints', () => {
  test('round trip: F32 bit-exact for f32 values, metadata, tensor names', () => {
    const file = path.join(dir, 'rt.safetensors');
    const c = ckpt();
    saveCheckpoint(file, c);
    const bytes = fs.readFileSync(file);
    const { header } = headerOf(bytes);
    assert.ok(
      'params.hidden.hidden0.w' in header && 'state.m.out.w' in header && 'state.v.hidden.hidden1.b' in header && 'ema.out.w' in header,
    );
    assert.deepEqual(header['params.hidden.hidden0.w'].shape, [2, 8]);
    const meta = JSON.parse(header.__metadata__.fusediff);
    assert.equal(meta.signature, c.signature);
    const back = loadCheckpoint(file, { expectSignature: c.signature });
    treesBitsEqual(c.params, back.params);
    treesBitsEqual(c.state, back.state);
    treesBitsEqual(c.ema, back.ema);
    assert.deepEqual(back.config, c.config);
    assert.equal(back.step, 1234);
    assert.equal(back.rngCounter, 98765);
    assert.equal(back.schedule, 'cosine');
    assert.equal(back.signature, c.signature);
    assert.equal(back.version, FUSEDIFF_VERSION);
    assert.match(FUSEDIFF_VERSION, /^\d+\.\d+\.\d+/);
    assert.deepEqual(tmpLeftovers(), []);
  });

  test('round trip: F64 exact for arbitrary doubles; empty state and a single-array tree', () => {
    const file = path.join(dir, 'f64.safetensors');
    const c = ckpt({ params: model, state: {}, ema: initNormal([3], 1, 9) });
    saveCheckpoint(file, c, { dtype: 'F64' });
    const back = loadCheckpoint(file);
    treesBitsEqual(model, back.params);
    assert.deepEqual(back.state, {});
    bitsEqual(c.ema as NDArray, back.ema as NDArray);
    // F32 rounds
    saveCheckpoint(file, c);
    treesBitsEqual(roundF32(model), loadCheckpoint(file).params);
  });

  test('a config codec types the config and names failing paths', () => {
    const file = path.join(dir, 'cfg.safetensors');
    saveCheckpoint(file, ckpt());
    const Config = t.type({ lr: t.number, dataset: t.string });
    assert.equal(loadCheckpoint(file, { configCodec: Config }).config.lr, 1e-3);
    assert.throws(
      () => loadCheckpoint(file, { configCodec: t.type({ lr: t.string }) }),
      /metadata\.config\.lr: expected string, got 0\.001/,
    );
  });

  test('malformed metadata: the io-ts error names the path and the expected type', () => {
    const file = path.join(dir, 'bad-meta.safetensors');
    const meta = { format: 1, version: '0.1.0', signature: 's', step: 'x', rngCounter: 0, schedule: 'cosine', config: {} };
    fs.writeFileSync(file, encodeSafetensors({ 'params.w': ndarray([1], [1]) }, { fusediff: JSON.stringify(meta) }));
    assert.throws(
      () => loadCheckpoint(file),
      (e: Error) =>
        e instanceof CheckpointError &&
        e.message.includes(file) &&
        /metadata\.step: expected non-negative integer, got "x"/.test(e.message),
    );
    fs.writeFileSync(file, encodeSafetensors({}, { fusediff: JSON.stringify({ ...meta, step: 1, config: [], schedule: undefined }) }));
    assert.throws(
      () => loadCheckpoint(file),
      (e: Error) =>
        /metadata\.schedule: expected string, got undefined/.test(e.message) &&
        /metadata\.config: expected UnknownRecord, got \[\]/.test(e.message),
    );
    fs.writeFileSync(file, encodeSafetensors({}, { other: '1' }));
    assert.throws(() => loadCheckpoint(file), /not a fusediff checkpoint: __metadata__ has no 'fusediff' key \(keys: other\)/);
    fs.writeFileSync(file, encodeSafetensors({}, { fusediff: '{' }));
    assert.throws(() => loadCheckpoint(file), /__metadata__\.fusediff is not valid JSON/);
    fs.writeFileSync(
      file,
      encodeSafetensors(
        { 'params.w': ndarray([1], [1]), 'params.w.x': ndarray([1], [1]), junk: ndarray([1], [1]) },
        { fusediff: JSON.stringify({ ...meta, step: 1 }) },
      ),
    );
    assert.throws(() => loadCheckpoint(file), /tensor 'junk' outside params\.\*, state\.\* and ema\.\*/);
  });

  test('save validates before writing', () => {
    assert.throws(
      () => saveCheckpoint(path.join(dir, 'x.safetensors'), ckpt({ step: -1 })),
      /metadata\.step: expected non-negative integer, got -1/,
    );
    assert.throws(
      () => saveCheckpoint(path.join(dir, 'x.safetensors'), ckpt({ params: { w: 3 } as never })),
      /'params\.w' is neither an NDArray nor a record/,
    );
    assert.throws(() => saveCheckpoint(path.join(dir, 'x.safetensors'), ckpt({ config: { lr: NaN } })), /metadata\.config\.lr is NaN/);
    assert.equal(fs.existsSync(path.join(dir, 'x.safetensors')), false);
    assert.deepEqual(tmpLeftovers(), []);
  });

  test('truncated and corrupted checkpoint files get clear errors', () => {
    const file = path.join(dir, 'trunc.safetensors');
    saveCheckpoint(file, ckpt());
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - 10));
    assert.throws(
      () => loadCheckpoint(file),
      (e: Error) =>
        e instanceof SafetensorsError && e.message.startsWith(`${file}: tensor `) && /beyond the \d+-byte data section/.test(e.message),
    );
    fs.writeFileSync(file, bytes.subarray(0, 100));
    assert.throws(() => loadCheckpoint(file), /header length \d+ \(bytes 0-7\) exceeds the 92 bytes that follow the prefix/);
    const bad = Buffer.from(bytes);
    bad.write('"', 8 + 2); // breaks the header's JSON
    fs.writeFileSync(file, bad);
    assert.throws(() => loadCheckpoint(file), /is not valid JSON/);
    assert.throws(() => loadCheckpoint(path.join(dir, 'missing.safetensors')), /could not read checkpoint .*missing\.safetensors.*ENOENT/);
  });

  test('wrong model signature: a clear error naming what differs, the file untouched', () => {
    const file = path.join(dir, 'sig.safetensors');
    saveCheckpoint(file, ckpt());
    const before = fs.readFileSync(file);
    const mtime = fs.statSync(file).mtimeMs;
    assert.throws(
      () => loadCheckpoint(file, { expectSignature: 'unet:16' }),
      (e: Error) =>
        e instanceof SignatureMismatchError &&
        e.message.includes('\n  model kind: saved mlp-denoiser:2-8-8-2, requested unet:16') &&
        e.message.includes(file),
    );
    assert.deepEqual(fs.readFileSync(file), before);
    assert.equal(fs.statSync(file).mtimeMs, mtime);
    assert.deepEqual(tmpLeftovers(), []);
  });

  test('atomic writes: overwrite leaves no temporaries; a failed write keeps the old file', () => {
    const file = path.join(dir, 'atomic.safetensors');
    saveCheckpoint(file, ckpt({ step: 1 }));
    saveCheckpoint(file, ckpt({ step: 2 }));
    assert.equal(loadCheckpoint(file).step, 2);
    assert.deepEqual(tmpLeftovers(), []);
    const before = fs.readFileSync(file);

    // an unserialisable value: fails before anything touches the disk
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => saveCheckpoint(file, ckpt({ step: 3, config: cyclic })), /metadata\.config\.self is a circular reference/);
    assert.throws(() => saveCheckpoint(file, ckpt({ step: 3, config: { n: 10n } })), /metadata\.config\.n is a bigint/);
    assert.deepEqual(fs.readFileSync(file), before);

    // failures after the temporary file exists: fsync and rename fail
    for (const fn of ['fsyncSync', 'renameSync'] as const) {
      const m = mock.method(fs, fn, () => {
        throw Object.assign(new Error(`simulated ${fn} failure`), { code: 'EIO' });
      });
      try {
        assert.throws(
          () => saveCheckpoint(file, ckpt({ step: 4 })),
          (e: Error) => e instanceof CheckpointError && e.message.includes(`simulated ${fn} failure`) && e.message.includes('unchanged'),
        );
        assert.equal(m.mock.callCount(), 1);
      } finally {
        m.mock.restore();
      }
      assert.deepEqual(fs.readFileSync(file), before);
      assert.deepEqual(tmpLeftovers(), []);
    }

    // the target directory disappears
    const gone = fs.mkdtempSync(path.join(dir, 'gone-'));
    fs.rmSync(gone, { recursive: true });
    assert.throws(() => saveCheckpoint(path.join(gone, 'c.safetensors'), ckpt()), /could not write .*ENOENT/);
    assert.equal(loadCheckpoint(file).step, 2);
  });
});
