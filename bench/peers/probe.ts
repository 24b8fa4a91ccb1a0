// The check an MLP-step row passes before its speed counts, in every benchmark (bench/peers/check.ts, bench/webgpu.ts,
// the page's bench/page/entry.ts): the system computes our function, its loss on the fixed probe batch at the shared
// initial parameters within PROBE_REL_TOL of the float64 reference (f32 arithmetic over a batch of 512 lands near
// 1e-7; 1e-4 is far above that and far below what a different model or loss gives), and, where it was trained, the
// probe loss fell and every loss was finite.

export const PROBE_REL_TOL = 1e-4;

export interface ProbeVerdict {
  readonly ok: boolean;
  /** |probe loss - reference| / reference, at the initial parameters */
  readonly relErr: number;
  /** what failed, in words ('' when ok) */
  readonly reason: string;
}

export const probeVerdict = (o: {
  /** the probe loss at the initial parameters */
  readonly before: number;
  /** the float64 reference of the same */
  readonly reference: number;
  /** the probe loss after training, where the row trained */
  readonly after?: number;
  /** the losses of the timed steps, where the row trained */
  readonly losses?: readonly number[];
}): ProbeVerdict => {
  const relErr = Math.abs(o.before - o.reference) / o.reference;
  const problems = [
    relErr < PROBE_REL_TOL ? '' : `probe loss ${o.before} against float64 ${o.reference} (rel err ${relErr.toExponential(1)})`,
    o.after === undefined || o.after < o.before ? '' : `probe loss ${o.after} after training, not below ${o.before}`,
    (o.losses ?? []).every(Number.isFinite) ? '' : 'a non-finite loss',
  ].filter(Boolean);
  return { ok: problems.length === 0, relErr, reason: problems.join('; ') };
};
