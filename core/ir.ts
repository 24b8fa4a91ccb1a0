// The graph IR: immutable, topologically ordered nodes, each a primitive applied to earlier nodes.
// Graphs are data; every pass (autodiff, interpretation, later fusion) is a function of a Graph.
import type { Shape } from './shape.ts';

export const unaryOps = ['neg', 'exp', 'log', 'sqrt', 'rsqrt', 'sin', 'cos', 'tanh', 'sigmoid', 'relu', 'abs', 'floor'] as const;
export const binaryOps = ['add', 'sub', 'mul', 'div', 'pow', 'max', 'min'] as const;
export const compareOps = ['lt', 'le', 'gt', 'ge', 'eq', 'ne'] as const;
export const reduceOps = ['sum', 'reduceMax'] as const;

export type UnaryOp = (typeof unaryOps)[number];
export type BinaryOp = (typeof binaryOps)[number];
export type CompareOp = (typeof compareOps)[number];
export type ReduceOp = (typeof reduceOps)[number];
export type RandomDist = 'normal' | 'uniform';

type NoAttrs = Record<string, never>;

/** Attributes per primitive. The output shape lives on the node, so reshape and broadcast need no attrs. */
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

export type OpName = keyof AttrsOf;

export type Node = {
  [K in OpName]: {
    readonly id: number;
    readonly op: K;
    readonly inputs: readonly number[];
    readonly shape: Shape;
    readonly attrs: AttrsOf[K];
    /** where the user's code created it, for error messages and reports */
    readonly site?: string;
  };
}[OpName];

export type NodeOf<K extends OpName> = Extract<Node, { op: K }>;

export interface Output {
  readonly name: string;
  readonly id: number;
}

export interface Graph {
  readonly nodes: readonly Node[];
  readonly outputs: readonly Output[];
}

export const graphInputs = (g: Graph): NodeOf<'input'>[] =>
  g.nodes.filter((n): n is NodeOf<'input'> => n.op === 'input');

export const isUnary = (op: OpName): op is UnaryOp => (unaryOps as readonly string[]).includes(op);
export const isBinary = (op: OpName): op is BinaryOp => (binaryOps as readonly string[]).includes(op);
export const isCompare = (op: OpName): op is CompareOp => (compareOps as readonly string[]).includes(op);
