// The emitter of every primitive, one table: a new op without its emitter fails to typecheck here.
import { conv2d } from './conv.ts';
import { elementwiseEmitters } from './elementwise.ts';
import { matmul } from './matmul.ts';
import { reductionEmitters } from './reduce.ts';
import { sourceEmitters } from './sources.ts';
import type { EmitTable } from './types.ts';
import { viewEmitters } from './views.ts';

export type { Emit, EmitContext, EmitTable, Index } from './types.ts';

export const emitters: EmitTable = {
  ...sourceEmitters,
  ...elementwiseEmitters,
  ...viewEmitters,
  ...reductionEmitters,
  matmul,
  conv2d,
};
