// One home per primitive: every per-op table is typed exhaustive over the op list, so an op added without one of
// its rules fails to typecheck. Each table type is generic over its op list; here `tsc` is given OpName plus a
// hypothetical 'newOp' and must reject every real table (@ts-expect-error) and accept it once the rule is added.
// At run time, the tables hold exactly the ops, the groups partition them, and the derived sets agree.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareOps, opGroups, type GroupsCover, type OpGroup, type OpName } from '../core/ir.ts';
import { primitives, type PrimitiveTable } from '../core/primitives/index.ts';
import { blocksGradient, nonDiff, vjpRules, type VjpTable } from '../transforms/vjpRules.ts';
import { primitiveCaseTable, type CaseTable } from '../transforms/check/primitiveCases.ts';
import { fusionRules, type FusionClass, type FusionTable } from '../compiler/passes/fusionClass.ts';
import { lowerRules, type LowerTable } from '../compiler/kernel/lower.ts';

type Extended = OpName | 'newOp';

test('a table missing the rule of an added op fails to typecheck; with the rule it is accepted', () => {
  // @ts-expect-error the shape and f64 table has no rule for newOp
  const shapes: PrimitiveTable<Extended> = primitives;
  const shapesOk: PrimitiveTable<Extended> = { ...primitives, newOp: { shape: ([x]) => x, eval: ([x]) => x.data } };

  // @ts-expect-error the vjp table has no entry for newOp
  const vjp: VjpTable<Extended> = vjpRules;
  const vjpOk: VjpTable<Extended> = { ...vjpRules, newOp: nonDiff };

  // @ts-expect-error the fusion table has no class for newOp
  const fusion: FusionTable<Extended> = fusionRules;
  const fusionOk: FusionTable<Extended> = { ...fusionRules, newOp: { class: 'elementwise', cost: 1 } };

  // @ts-expect-error the codegen table has no emitter for newOp
  const emit: LowerTable<Extended> = lowerRules;
  const emitOk: LowerTable<Extended> = { ...lowerRules, newOp: () => ({ k: 'lit', v: 0 }) as const };

  // @ts-expect-error the gradient-check table has no entry (not even null) for newOp
  const cases: CaseTable<Extended> = primitiveCaseTable;
  const casesOk: CaseTable<Extended> = { ...primitiveCaseTable, newOp: null };

  // @ts-expect-error no group names newOp
  const grouped: GroupsCover<Extended> = true;
  const groupedOk: GroupsCover<OpName> = true;

  for (const t of [shapes, vjp, fusion, emit, cases]) assert.equal('newOp' in t, false);
  for (const t of [shapesOk, vjpOk, fusionOk, emitOk, casesOk]) assert.equal('newOp' in t, true);
  assert.ok(grouped && groupedOk);
});

const grouped = Object.values(opGroups).flat() as OpName[];
const sorted = (xs: Iterable<string>) => [...xs].sort();

test('the groups name every op exactly once', () => {
  assert.equal(new Set(grouped).size, grouped.length, 'an op is in two groups');
  assert.deepEqual(sorted(grouped), sorted(Object.keys(primitives)));
});

test('every table holds exactly the ops (no stale entries)', () => {
  for (const [name, table] of Object.entries({ primitives, vjpRules, fusionRules, lowerRules, primitiveCaseTable }))
    assert.deepEqual(sorted(Object.keys(table)), sorted(grouped), name);
});

test('the non-differentiable ops read from the vjp table are the sources, stopGradient, floor and the comparisons', () => {
  assert.deepEqual(sorted(grouped.filter(blocksGradient)), sorted(['input', 'constant', 'random', 'stopGradient', 'floor', ...compareOps]));
});

test("fusion classes agree with the ops' groups", () => {
  const allowed: Record<OpGroup, readonly FusionClass[]> = {
    elementwise: ['elementwise'],
    view: ['view', 'maskedView'],
    reduction: ['core'],
    contraction: ['core'],
    source: ['source', 'generator'],
  };
  for (const [group, ops] of Object.entries(opGroups) as [OpGroup, readonly OpName[]][])
    for (const o of ops) assert.ok(allowed[group].includes(fusionRules[o].class), `${o}: ${fusionRules[o].class} in group ${group}`);
});
