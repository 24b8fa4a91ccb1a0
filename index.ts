// The library's public surface: the DSL, the graph transforms, the interpreter and gradient checking.
export * from './dsl/index.ts';
export { checkGrads, type CheckGradsOptions, type GradCheckReport } from './compiler/check/checkGrads.ts';
export { runSuite, suiteNames, type SuiteReport } from './compiler/check/suite.ts';
export type { Node, OpName } from './compiler/ir.ts';
