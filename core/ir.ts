// The graph IR: immutable, topologically ordered nodes, each a primitive applied to earlier nodes.
// Graphs are data; every pass (autodiff, interpretation, later fusion) is a function of a Graph.
import type { Shape } from './shape.ts';

export const unaryOps = ['neg', 'exp', 'log', 'sqrt', 'rsqrt', 'sin', 'cos', 'tanh', 'sigmoid', 'relu', 'abs', 'floor'] as const;
export const binaryOps = ['add', 'sub', 'mul', 'div', 'pow', 'max', 'min'] as const;
export const compareOps = ['lt', 'le', 'gt', 'ge', 'eq', 'ne'] as const;
export const reduceOps = ['sum', 'reduceMax'] as const;

/**
 * Every primitive in exactly one group (test/optable.types.test.ts checks both), by what it does to elements; the
 * guards below are derived from them. (How fusion treats each op is its own table, compiler/passes/fusionClass.ts.)
 *  elementwise: output element i depends on element i of each input only
 *  view:        output elements are input elements at remapped indices (or zeros)
 *  reduction:   a loop over the reduced axes
 *  contraction: a loop over a shared dimension (matmul) or a window (conv2d)
 *  source:      no tensor operand (random's input is a scalar counter)
 */
export const opGroups = {
  elementwise: [...unaryOps, ...binaryOps, ...compareOps, 'where', 'stopGradient'],
  view: ['reshape', 'broadcast', 'permute', 'slice', 'pad', 'concat', 'flip'],
  reduction: reduceOps,
  contraction: ['matmul', 'conv2d'],
  source: ['input', 'constant', 'random'],
} as const satisfies Record<string, readonly OpName[]>;

export type OpGroup = keyof typeof opGroups;
export type OpsIn<G extends OpGroup> = (typeof opGroups)[G][number];

export type UnaryOp = (typeof unaryOps)[number];
export type BinaryOp = (typeof binaryOps)[number];
export type CompareOp = (typeof compareOps)[number];
export type ReduceOp = (typeof reduceOps)[number];
export type RandomDist = 'normal' | 'uniform';

type NoAttrs = Record<string, never>;

/**
 * Attributes per primitive: its keys are the op list (OpName). The output shape lives on the node, so reshape and
 * broadcast need no attrs. A new op goes here and into one group above; tsc then names every table still missing its
 * rule: core/primitives (shape, f64), transforms/vjpRules.ts, transforms/check/primitiveCases.ts,
 * compiler/passes/fusionClass.ts and compiler/kernel/lower.ts. Its DSL wrapper (dsl/ops.ts) is not a table.
 */
export interface AttrsOf extends Record<UnaryOp | BinaryOp | CompareOp, NoAttrs> {
  input: { name: string };
  constant: { value: Float64Array };
  where: NoAttrs;
  sum: { axes: readonly number[] }; // reduced axes are kept with size 1
  reduceMax: { axes: readonly number[] };
  reshape: NoAttrs;
  broadcast: NoAttrs; // numpy rules, input rank <= output rank
  permute: { perm: readonly number[] };
  slice: { start: readonly number[]; stop: readonly number[]; step: readonly number[] };
  pad: { lo: readonly number[]; hi: readonly number[]; interior: readonly number[] };
  concat: { axis: number };
  flip: { axes: readonly number[] };
  matmul: NoAttrs; // [...B, M, K] x [...B, K, N], equal batch dims
  conv2d: { stride: readonly [number, number]; padding: readonly [number, number, number, number] }; // top, bottom, left, right
  random: { dist: RandomDist; seed: number; stream: number }; // input 0: scalar counter
  stopGradient: NoAttrs;
}

/** The name of every primitive of the IR (the closed set that tracing emits and every pass handles). */
export type OpName = keyof AttrsOf;

/** true when the groups name every op of Ops (OpName, or in a type test OpName plus a hypothetical op) */
export type GroupsCover<Ops extends string> = [Ops] extends [OpsIn<OpGroup>] ? true : false;
type Holds<T extends true> = T;
// An op added to AttrsOf but to no group fails here (a group naming an unknown op fails at `satisfies` above).
export type GroupsCoverOps = Holds<GroupsCover<OpName>>;

type NodeMap = {
  [K in OpName]: {
    readonly id: number;
    readonly op: K;
    readonly inputs: readonly number[];
    readonly shape: Shape;
    readonly attrs: AttrsOf[K];
    /** where the user's code created it, for error messages and reports */
    readonly site?: string;
  };
};

/** One node of a graph: its primitive, input node ids, attributes, output shape and the user's call site. */
export type Node = NodeMap[OpName];

/** The nodes of op K (an indexed access, not Extract: so a rule for ops A | B also serves as the rule for A). */
export type NodeOf<K extends OpName> = NodeMap[K];

export interface Output {
  readonly name: string;
  readonly id: number;
}

/** A traced function as plain data: its nodes (each after its inputs) and its named outputs. */
export interface Graph {
  readonly nodes: readonly Node[];
  readonly outputs: readonly Output[];
}

export const graphInputs = (g: Graph): NodeOf<'input'>[] => g.nodes.filter((n): n is NodeOf<'input'> => n.op === 'input');

/** A type guard for the ops of a list. */
const member =
  <const L extends readonly OpName[]>(list: L) =>
  (op: OpName): op is L[number] =>
    (list as readonly OpName[]).includes(op);

export const isUnary = member(unaryOps);
export const isBinary = member(binaryOps);
export const isCompare = member(compareOps);
export const isElementwise = member(opGroups.elementwise);
export const isView = member(opGroups.view);
export const isReduction = member(opGroups.reduction);
export const isContraction = member(opGroups.contraction);
export const isSource = member(opGroups.source);
