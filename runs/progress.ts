// Progress bars (cli-progress) on stderr: a live bar on a terminal, a line every few seconds in a log.
import cliProgress from 'cli-progress';

export interface Progress {
  update(value: number, fields?: Record<string, string>): void;
  stop(): void;
}

export const progressBar = (label: string, total: number, start = 0, fields: Record<string, string> = {}): Progress => {
  const extra = Object.keys(fields)
    .map((k) => ` | ${k} {${k}}`)
    .join('');
  const bar = new cliProgress.SingleBar(
    {
      format: `${label.padEnd(14)} |{bar}| {value}/{total}${extra} | {rate}/s | ETA {eta_formatted}`,
      stream: process.stderr,
      noTTYOutput: true,
      notTTYSchedule: 10_000,
      etaBuffer: 50,
      hideCursor: true,
      barsize: 24,
    },
    cliProgress.Presets.shades_classic,
  );
  const t0 = performance.now();
  bar.start(total, start, { ...fields, rate: '-' });
  return {
    update: (value, f = {}) => bar.update(value, { ...f, rate: ((value - start) / ((performance.now() - t0) / 1000)).toFixed(1) }),
    stop: () => bar.stop(),
  };
};
