// Type-level shape arithmetic: literal dimensions are checked by TypeScript, `number` dimensions at trace time.
export type { Shape } from '../core/shape.ts';
import type { Shape } from '../core/shape.ts';

/** A shape as a mutable tuple (`readonly [3, 2]` -> `[3, 2]`): the type users write in annotations. */
export type MutableShape<S> = { -readonly [K in keyof S]: S[K] };

type IsTuple<S extends Shape> = number extends S['length'] ? false : true;

type BroadcastDim<A extends number, B extends number> = A extends 1
  ? B
  : B extends 1
    ? A
    : number extends A
      ? B
      : number extends B
        ? A
        : A extends B
          ? A
          : never;

type BroadcastTuple<A extends Shape, B extends Shape> = A extends readonly [...infer AR extends number[], infer AL extends number]
  ? B extends readonly [...infer BR extends number[], infer BL extends number]
    ? [...BroadcastTuple<AR, BR>, BroadcastDim<AL, BL>]
    : [...A]
  : [...B];

/** numpy broadcasting of two shapes; a literal mismatch leaves `never` in the offending position. */
export type Broadcast<A extends Shape, B extends Shape> =
  IsTuple<A> extends true ? (IsTuple<B> extends true ? BroadcastTuple<A, B> : number[]) : number[];

type HasNever<S extends Shape> = true extends { [K in keyof S]: [S[K]] extends [never] ? true : false }[number] ? true : false;

/** `unknown` when the two shapes broadcast, otherwise a type no tensor has, whose keys say what went wrong. */
export type BroadcastCheck<A extends Shape, B extends Shape> =
  HasNever<Broadcast<A, B>> extends true ? { 'shapes are not broadcastable': [A, B] } : unknown;

type Last<S extends Shape> = S extends readonly [...number[], infer L extends number] ? L : number;
type SecondLast<S extends Shape> = S extends readonly [...number[], infer L extends number, number] ? L : number;
type Batch<S extends Shape> = S extends readonly [...infer B extends number[], number, number] ? B : number[];

type DimsAgree<A extends number, B extends number> = number extends A ? true : number extends B ? true : A extends B ? true : false;

/** `unknown` when a's last dimension can equal b's second to last, otherwise an error-carrying type. */
export type MatmulCheck<A extends Shape, B extends Shape> =
  DimsAgree<Last<A>, SecondLast<B>> extends true
    ? HasNever<Broadcast<Batch<A>, Batch<B>>> extends true
      ? { 'matmul batch dimensions differ': [A, B] }
      : unknown
    : { 'matmul inner dimensions differ': [Last<A>, SecondLast<B>] };

/** The result shape of `matmul(a, b)`: the broadcast batch dimensions, then [M, N]; `number[]` unless both are tuples. */
export type MatmulShape<A extends Shape, B extends Shape> =
  IsTuple<A> extends true ? (IsTuple<B> extends true ? [...Broadcast<Batch<A>, Batch<B>>, SecondLast<A>, Last<B>] : number[]) : number[];
