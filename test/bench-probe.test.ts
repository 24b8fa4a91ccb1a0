// The check every benchmark's MLP-step row passes before its speed counts (bench/peers/probe.ts): a system that
// computes another function, does not train, or diverges gets no row.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROBE_REL_TOL, probeVerdict } from '../bench/peers/probe.ts';

test('bench probe: the same function within 1e-4 of float64, trained down, finite', () => {
  const reference = 0.8;
  const ok = probeVerdict({ before: reference * (1 + 1e-6), reference, after: 0.5, losses: [0.7, 0.6] });
  assert.equal(ok.ok, true);
  assert.equal(ok.reason, '');
  assert.ok(Math.abs(ok.relErr - 1e-6) < 1e-9);
  const other = probeVerdict({ before: reference * (1 + 2 * PROBE_REL_TOL), reference });
  assert.equal(other.ok, false);
  assert.match(other.reason, /against float64/);
  assert.match(probeVerdict({ before: reference, reference, after: reference }).reason, /not below/);
  assert.match(probeVerdict({ before: reference, reference, after: 0.1, losses: [0.5, NaN] }).reason, /non-finite/);
  assert.equal(probeVerdict({ before: NaN, reference }).ok, false, 'a NaN probe loss is no match');
});
