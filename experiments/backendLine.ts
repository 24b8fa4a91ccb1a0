// The report's Backend line: which backend ran each phase (training, sampling, evaluation) and why, read from the
// plans that ran (their backendReason: auto's timed choice where it timed one), never from auto's untimed guess.

/** One backend that ran (part of) a phase, with the reason its plan gave; a phase may list several (other models). */
export interface PhaseBackend {
  readonly phase: 'training' | 'sampling' | 'evaluation';
  readonly backend: string;
  readonly reason: string;
}

/** What the phases read from: the models trained here and the rows sampled (fields absent on older job files). */
interface Ran {
  readonly models: readonly { backend?: string; backendReason?: string }[];
  readonly rows: readonly { backend: string; backendReason?: string; evalBackend?: string; evalBackendReason?: string }[];
}

/** The distinct (phase, backend, reason) of what ran, in the order training, sampling, evaluation. */
export const phasesOf = (datasets: readonly Ran[]): PhaseBackend[] => {
  const seen = new Map<string, PhaseBackend>();
  const add = (phase: PhaseBackend['phase'], backend: string | undefined, reason: string | undefined) => {
    if (backend && reason) seen.set(`${phase}\0${backend}\0${reason}`, { phase, backend, reason });
  };
  for (const d of datasets) for (const m of d.models) add('training', m.backend, m.backendReason);
  for (const d of datasets) for (const r of d.rows) add('sampling', r.backend, r.backendReason);
  for (const d of datasets) for (const r of d.rows) add('evaluation', r.evalBackend, r.evalBackendReason);
  return [...seen.values()];
};

/**
 * The report's `backend` (the backends that ran, e.g. 'wasm' or 'webgpu, wasm') and `backendReason` (each phase on
 * its backend, and why); `untimed` (auto's untimed choice for the spec's request) only where nothing ran here.
 */
export const backendSummary = (
  phases: readonly PhaseBackend[],
  untimed: { name: string; reason: string },
  bold = (s: string) => s,
): { backend: string; backendReason: string } => {
  if (!phases.length) return { backend: untimed.name, backendReason: `${untimed.reason}; no plan ran here` };
  const backend = [...new Set(phases.map((p) => p.backend))].join(', ');
  const backendReason = phases.map((p) => `${p.phase} on ${bold(p.backend)} (${p.reason})`).join('; ');
  return { backend, backendReason };
};

/** The markdown line: 'Backend: training on **webgpu** (auto: webgpu (...)); sampling on **wasm** (...)'. */
export const backendLine = (r: { backend: string; backendReason: string; phases?: readonly PhaseBackend[] }): string =>
  r.phases?.length
    ? `Backend: ${backendSummary(r.phases, { name: r.backend, reason: r.backendReason }, (b) => `**${b}**`).backendReason}.`
    : `Backend: **${r.backend}** (${r.backendReason}).`;
