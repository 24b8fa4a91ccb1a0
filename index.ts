// The library's public surface, one import for users: the DSL (ops, composites, parameter trees, nn, tracing,
// the float64 interpreter), differentiation and gradient checking, the compiler and the compiled training step.
export * from './dsl/index.ts';
export { grad, valueAndGrad, vjp, gradName, cotangentName } from './transforms/grad.ts';
export { checkGrads, type CheckGradsOptions, type GradCheckReport, type HostArgs } from './transforms/check/checkGrads.ts';
export { runSuite, suiteNames, type SuiteReport } from './transforms/check/suite.ts';
export { compile, availableBackends, probeBackend, resolveBackend, backendFor, createBackend, shutdownBackends } from './compiler/index.ts';
export type {
  Backend,
  BackendCounters,
  BackendName,
  BackendRequest,
  CompileOptions,
  Executable,
  RunDeviceOptions,
} from './compiler/index.ts';
export { compileStep, NonFiniteLossError, type StepArgs, type StepOptions, type TrainStep } from './train/compileStep.ts';
export { compileStepAuto, type AutoOptions } from './train/compileStepAuto.ts';
export { compilePlanAuto, timePlan, type PlanAutoOptions } from './train/compilePlanAuto.ts';
export { memoryChoiceCache, type AdapterFacts, type ChoiceCache, type TimedChoice } from './train/autoChoice.ts';
export { adam, sgd, type Optimizer } from './dsl/optim.ts';
export { emaDecayAt, emaUpdate } from './train/ema.ts';
export type { Node, OpName } from './core/ir.ts';
// Your own step, inspected and benchmarked (docs/your-step.md): its compiled plan, a per-kernel profile and a tinybench
// benchmark as data, the printers of the tables `fusediff inspect` and `fusediff bench` print, and the step module's shape.
export {
  benchStep,
  buildStep,
  defineStep,
  formatStepBench,
  formatStepPlan,
  formatStepProfile,
  inspectStep,
  profileStep,
  stepPlan,
  stepSourceOf,
  timeRuns,
} from './train/inspectStep.ts';
export type {
  BenchStepOptions,
  FormatPlanOptions,
  InspectStepOptions,
  KernelPlan,
  KernelProfile,
  ProfileStepOptions,
  StepBench,
  StepContext,
  StepFactory,
  StepInputs,
  StepPlan,
  StepProfile,
  StepReport,
  StepSource,
  StepSpec,
  TimingOptions,
  TimingStats,
} from './train/inspectStep.ts';
