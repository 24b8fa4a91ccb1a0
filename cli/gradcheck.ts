// `fusediff gradcheck`: runs the property-based gradient suite and prints per-primitive worst errors.
import { runSuite, suiteNames, type PrimitiveResult, type SuiteReport } from '../transforms/check/suite.ts';

export interface GradcheckFlags {
  json: boolean;
  runs: number;
  seed: number;
  only?: string[];
}

const row = (r: PrimitiveResult) =>
  `${r.ok ? 'ok  ' : 'FAIL'}  ${r.name.padEnd(14)} ${String(r.runs).padStart(5)} runs   max rel err ${r.maxRelErr.toExponential(2)}`;

export const gradcheck = (flags: GradcheckFlags): number => {
  const valid = [...suiteNames(), 'graphs'];
  const unknown = (flags.only ?? []).filter((n) => !valid.includes(n));
  if (unknown.length) {
    console.error(`gradcheck: unknown name(s) ${unknown.join(', ')}; valid names: ${valid.join(', ')}`);
    return 2;
  }
  if (!flags.json)
    console.log(
      `gradient check: ${flags.runs} random cases per primitive, seed ${flags.seed}, ` +
        `float64 interpreter, central differences (eps 1e-6, rtol 1e-5, atol 1e-6)`,
    );
  const report: SuiteReport = runSuite({
    runs: flags.runs,
    seed: flags.seed,
    only: flags.only,
    onResult: flags.json ? undefined : (r) => console.log(row(r)),
  });
  const failed = report.primitives.filter((p) => !p.ok);
  if (flags.json) {
    console.log(JSON.stringify(report));
  } else {
    console.log(
      `${report.graphs.failures ? 'FAIL' : 'ok  '}  ${'random graphs'.padEnd(14)} ` +
        `${String(report.graphs.runs).padStart(5)} runs   max rel err ${report.graphs.maxRelErr.toExponential(2)}`,
    );
    for (const f of failed) console.log(`\n${f.name}: minimal failing case\n${f.counterexample}`);
    if (report.graphs.counterexample) console.log(`\nminimal failing graph:\n${report.graphs.counterexample}`);
    console.log(
      `\n${failed.length + report.graphs.failures === 0 ? 'all gradients ok' : `${failed.length + report.graphs.failures} failure(s)`}` +
        ` in ${report.seconds.toFixed(1)} s`,
    );
  }
  return failed.length + report.graphs.failures === 0 ? 0 : 1;
};
