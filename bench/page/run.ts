// `npm run bench:page`: the multi-thread comparison in a browser page. In Node the peers run on one thread each
// (TF.js's wasm backend never loads its threaded binary there, jax-js finds no global Worker) while fusediff's
// wasm backend uses worker_threads, so `npm run bench` is not a like-for-like thread count. Here each system gets
// every core (navigator.hardwareConcurrency) in a cross-origin isolated page in headless Chromium: fusediff's wasm
// backend (the page + Web Workers), TF.js wasm's threaded-SIMD binary with setThreadsCount(cores) (and past its cap of
// half the cores: bench/page/entry.ts), jax-js's wasm device with its Web Workers.
//  1. bundles bench/page/entry.ts (the bench's own fusediff and peer classes) with esbuild;
//  2. serves it from a local http server with COOP/COEP headers (and the peers' .wasm files from node_modules);
//  3. opens a fresh page per system (no other system's workers in it) and runs, in rounds, each workload of
//     `npm run bench` on each system in turn: the reference MLP step, matmul 256, 512, 1024 and the forward conv
//     (jax-js: jit and eager, as there);
//  4. on the page's WebGPU adapter (SwiftShader's Vulkan, as the browser tests use it), the reference MLP step on
//     fusediff's own WGSL, on gpu.js's WebGPU path (which cannot run in Node), on TF.js webgpu and on jax-js webgpu,
//     in the same rounds: `webgpuRatios` is our WGSL over each (issue 21 asks for 10x gpu.js's WebGPU path);
//  5. prints the medians and writes bench/results/page.json (`--quick`: one short round, written to the temp folder
//     unless --out names a file).
// Options: --quick, --rounds N (default 3, --quick 1), --only fusediff,tfjs,jaxjs,fusediff-webgpu,gpujs-webgpu,tfjs-webgpu,
// jaxjs-webgpu (default all), --no-webgpu (the CPU systems only), --out FILE, --note TEXT (kept in the file).
import { build, type Plugin } from 'esbuild';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { BATCH, CONV, convFlops } from '../../workloads/reference.ts';
import type { BenchPageApi, PageRow, Timing, WorkloadId } from './entry.ts';
import { SYSTEMS as ALL_SYSTEMS, WEBGPU_SYSTEMS, type SystemId } from './systems.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const arg = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const quick = process.argv.includes('--quick');
const only = arg('--only')?.split(',');
const out = arg('--out') ?? (quick ? join(os.tmpdir(), 'fusediff-bench-page-quick.json') : join(root, 'bench/results/page.json'));
// tinybench as `npm run bench` times a row (3 s there, 2 s here: every row runs once per round), a second to let every
// system's workers start after its setup, and rounds: each round runs every workload on each system in turn, so a
// change in the machine's load falls on all systems alike; a row's value is the median of its rounds
const rounds = Number(arg('--rounds') ?? (quick ? 1 : 3));
const timing: Timing = quick
  ? { time: 500, iterations: 2, warmup: 1, settle: 500 }
  : { time: 2000, iterations: 5, warmup: 3, settle: 1000 };
// the WebGPU rows: a step on SwiftShader takes 0.4 to 6 s, so fewer runs (tinybench still runs `time` ms at least)
const webgpuTiming: Timing = quick ? timing : { time: 2000, iterations: 3, warmup: 1, settle: 500 };

const noWebgpu = process.argv.includes('--no-webgpu');
for (const s of only ?? [])
  if (!(ALL_SYSTEMS as readonly string[]).includes(s)) throw new Error(`--only: unknown system '${s}'; valid: ${ALL_SYSTEMS.join(', ')}`);
const SYSTEMS: readonly SystemId[] = ALL_SYSTEMS.filter(
  (s) => (only === undefined || only.includes(s)) && !(noWebgpu && WEBGPU_SYSTEMS.includes(s)),
);
const WORKLOADS: Record<SystemId, readonly WorkloadId[]> = {
  fusediff: ['mlp', 'matmul-256', 'matmul-512', 'matmul-1024', 'conv'],
  tfjs: ['mlp', 'matmul-256', 'matmul-512', 'matmul-1024', 'conv'],
  jaxjs: ['mlp', 'matmul-256', 'matmul-512', 'matmul-1024', 'conv', 'conv-eager'],
  'fusediff-webgpu': ['mlp'],
  'gpujs-webgpu': ['mlp'],
  'tfjs-webgpu': ['mlp'],
  'jaxjs-webgpu': ['mlp'],
};
if (quick) for (const s of SYSTEMS) WORKLOADS[s] = WORKLOADS[s].filter((w) => w !== 'matmul-1024' && w !== 'conv-eager');
const ORDER: readonly WorkloadId[] = ['mlp', 'matmul-256', 'matmul-512', 'matmul-1024', 'conv', 'conv-eager'];

// ---- the page's files -----------------------------------------------------------------------------------------
// The ids the peers resolve with createRequire (bench/peers/tfjs.ts, jaxjs.ts), resolved here; the page's shim
// (bench/page/shims.ts) answers with their paths under /node_modules/, which the server maps back.
const require = createRequire(import.meta.url);
const RESOLVE = ['@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm', '@jax-js/jax'];
const nodeModules = realpathSync(join(root, 'node_modules')); // require.resolve answers real paths (node_modules may be a link)
const resolved = Object.fromEntries(RESOLVE.map((id) => [id, `/node_modules/${relative(nodeModules, require.resolve(id))}`]));
/** the packages whose .wasm and .json files the server may send */
const servedPackages = ['@tensorflow/tfjs-backend-wasm', '@jax-js/jax'].map((p) => join(nodeModules, p) + '/');

const shims: Plugin = {
  name: 'bench-page-node-builtins',
  setup(b) {
    b.onResolve({ filter: /^(node:)?(module|fs\/promises)$/ }, () => ({ path: join(root, 'bench/page/shims.ts') }));
    // the library's own few built-ins: the playground's stand-ins (web/bundle.ts maps the same names there)
    b.onResolve({ filter: /^(node:)?(fs|os|url|crypto|path)$/ }, () => ({ path: join(root, 'web/shims/node.ts') }));
  },
};

console.log('bundling bench/page/entry.ts ...');
const bundle = await build({
  absWorkingDir: root,
  entryPoints: ['bench/page/entry.ts'],
  bundle: true,
  write: false,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  logLevel: 'error',
  plugins: [shims],
  // a page has no process: code that reads an environment variable (a tuning knob) gets none
  define: { __BENCH_PAGE_RESOLVED__: JSON.stringify(resolved), 'process.env': '{}' },
});
const files = new Map<string, { type: string; body: string | Uint8Array }>([
  [
    '/',
    {
      type: 'text/html',
      body: '<!doctype html><meta charset="utf-8"><title>fusediff bench page</title><script type="module" src="/bench.js"></script>',
    },
  ],
  ['/bench.js', { type: 'text/javascript', body: bundle.outputFiles[0].text }],
]);

// ---- a local server: cross-origin isolated (COOP + COEP), so the page may share memory with its workers ---------
const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  let file = files.get(path);
  if (!file && path.startsWith('/node_modules/') && /\.(wasm|json)$/.test(path)) {
    const abs = normalize(join(nodeModules, decodeURIComponent(path.slice('/node_modules/'.length))));
    if (servedPackages.some((p) => abs.startsWith(p)))
      try {
        file = { type: abs.endsWith('.wasm') ? 'application/wasm' : 'application/json', body: readFileSync(abs) };
      } catch {
        // not there: 404 below
      }
  }
  if (!file) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  res
    .writeHead(200, {
      'content-type': file.type,
      'cache-control': 'no-store',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
      'cross-origin-resource-policy': 'same-origin',
    })
    .end(file.body);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

// ---- headless Chromium (Debian's, as the browser tests launch it: test/browser/chromium.ts) -------------------
const executablePath =
  process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p)) ?? '/usr/bin/chromium';
const profile = mkdtempSync(join(os.tmpdir(), 'fusediff-bench-page-'));
process.once('exit', () => rmSync(profile, { recursive: true, force: true })); // on a failure too
// WebGPU on SwiftShader's Vulkan, as test/browser/chromium.ts asks for it (headless Chromium offers no adapter otherwise)
const webgpuArgs = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan', '--ignore-gpu-blocklist'];
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    ...(SYSTEMS.some((s) => WEBGPU_SYSTEMS.includes(s)) ? webgpuArgs : []),
  ],
});
await context.route(/^(?!http:\/\/127\.0\.0\.1[:/]).*/, (route) => route.abort('blockedbyclient'));
const browserVersion = context.browser()?.version() ?? 'unknown';

type Api = { fusediffBenchPage: BenchPageApi };
const loadBefore = os.loadavg();
// one fresh page per system, all open (an idle page's workers wait, they do not spin): no system's workers share its page
const opened = new Map<SystemId, Page>();
let info = { cores: 0, crossOriginIsolated: false, userAgent: '' };
let webgpuAdapter: string | undefined;
for (const system of SYSTEMS) {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`page error (${system}): ${e.message}`));
  page.on('console', (m) => void (m.type() === 'error' && console.error(`console (${system}): ${m.text()}`)));
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as Partial<Api>).fusediffBenchPage !== undefined, null, { timeout: 60_000 });
  info = await page.evaluate(() => {
    const api = (window as unknown as Api).fusediffBenchPage;
    return { cores: api.cores, crossOriginIsolated: api.crossOriginIsolated, userAgent: api.userAgent };
  });
  if (!info.crossOriginIsolated) throw new Error('bench page: the page is not cross-origin isolated (COOP/COEP): no threads');
  if (WEBGPU_SYSTEMS.includes(system) && webgpuAdapter === undefined)
    webgpuAdapter = await page.evaluate(() => (window as unknown as Api).fusediffBenchPage.webgpuAdapter());
  opened.set(system, page);
}
const byRound: PageRow[][] = [];
/** rows that threw (no WebGPU adapter in the page, a backend's error): left out of later rounds, listed in the file */
const failed: { system: SystemId; workload: WorkloadId; round: number; reason: string }[] = [];
for (let round = 0; round < rounds; round++) {
  console.log(`round ${round + 1} of ${rounds}`);
  const rowsOfRound: PageRow[] = [];
  for (const workload of ORDER)
    for (const system of SYSTEMS.filter((s) => WORKLOADS[s].includes(workload))) {
      if (failed.some((f) => f.system === system && f.workload === workload)) continue;
      let row: PageRow;
      try {
        row = await opened
          .get(system)!
          .evaluate(([s, w, t]) => (window as unknown as Api).fusediffBenchPage.measure(s, w, t), [
            system,
            workload,
            WEBGPU_SYSTEMS.includes(system) ? webgpuTiming : timing,
          ] as const);
      } catch (e) {
        const reason = (e instanceof Error ? e.message : String(e)).split('\n')[0];
        failed.push({ system, workload, round: round + 1, reason });
        console.log(`  ${workload.padEnd(12)} ${system}: FAILED: ${reason}`);
        continue;
      }
      rowsOfRound.push(row);
      const v = row.unit === 'samples/s' ? row.value.toFixed(0) : row.value.toFixed(2);
      console.log(
        `  ${workload.padEnd(12)} ${row.system.padEnd(21)} ${row.backend.padEnd(56)} ${v.padStart(8)} ${row.unit} ` +
          `(median ${row.medianMs.toFixed(2)} ms of ${row.runs}; workers ${row.workersWhileRunning} -> ${row.workersAfterDispose})`,
      );
    }
  byRound.push(rowsOfRound);
}
const pages: { system: SystemId; cores: number; workersAfterShutdown?: number; workersAtClose: number }[] = [];
for (const [system, page] of opened) {
  const workersAfterShutdown =
    system === 'fusediff' ? await page.evaluate(() => (window as unknown as Api).fusediffBenchPage.shutdown()) : undefined;
  const { live } = await page.evaluate(() => (window as unknown as Api).fusediffBenchPage.workers());
  pages.push({ system, cores: info.cores, workersAfterShutdown, workersAtClose: live });
  await page.close();
}
await context.close();
rmSync(profile, { recursive: true, force: true });
await new Promise<void>((resolve) => server.close(() => resolve()));
const loadAfter = os.loadavg();

// ---- the rows (each the round with the median value, and every round's value), ratios, the file -------------------
const rows = byRound[0].flatMap((first) => {
  // a row that failed in a later round has fewer values; one that failed in every round has none (and no row)
  const same = byRound.flatMap((r) => r.filter((x) => x.systemId === first.systemId && x.workload === first.workload));
  const sorted = [...same].sort((a, b) => a.value - b.value);
  return [{ ...sorted[(sorted.length - 1) >> 1], roundValues: same.map((r) => r.value) }];
});
const find = (id: SystemId, w: WorkloadId) => rows.find((r) => r.systemId === id && r.workload === w)?.value;
const ratios = Object.fromEntries(
  WORKLOADS.fusediff
    .filter((w) => find('fusediff', w) !== undefined)
    .map((w) => {
      const ours = find('fusediff', w)!;
      // jax-js's conv: the faster of jit and eager, as in bench/run.ts
      const jax = w === 'conv' ? Math.max(find('jaxjs', 'conv') ?? 0, find('jaxjs', 'conv-eager') ?? 0) || undefined : find('jaxjs', w);
      const tf = find('tfjs', w);
      return [w, { toTfjsWasm: tf ? ours / tf : undefined, toJaxjs: jax ? ours / jax : undefined }];
    }),
);
console.log('\nfusediff over each peer (rates at the median time):');
for (const [w, r] of Object.entries(ratios))
  console.log(`  ${w.padEnd(12)} ${r.toTfjsWasm?.toFixed(2) ?? '-'}x TF.js wasm  ${r.toJaxjs?.toFixed(2) ?? '-'}x jax-js`);
// the reference step on fusediff's WGSL over each WebGPU system of the same rounds and page adapter
const ourWgsl = find('fusediff-webgpu', 'mlp');
const over = (id: SystemId) => {
  const theirs = find(id, 'mlp');
  return ourWgsl !== undefined && theirs ? ourWgsl / theirs : undefined;
};
const webgpuRatios =
  ourWgsl === undefined
    ? undefined
    : { mlpOverGpujsWebgpu: over('gpujs-webgpu'), mlpOverTfjsWebgpu: over('tfjs-webgpu'), mlpOverJaxjsWebgpu: over('jaxjs-webgpu') };
if (webgpuRatios)
  console.log(
    `  mlp on WebGPU (${webgpuAdapter}): fusediff's WGSL ${webgpuRatios.mlpOverGpujsWebgpu?.toFixed(2) ?? '-'}x ` +
      `gpu.js's WebGPU path, ${webgpuRatios.mlpOverTfjsWebgpu?.toFixed(2) ?? '-'}x TF.js webgpu, ` +
      `${webgpuRatios.mlpOverJaxjsWebgpu?.toFixed(2) ?? '-'}x jax-js webgpu`,
  );

const cpus = os.cpus();
const fmt = (unit: PageRow['unit'], v: number) => (unit === 'samples/s' ? v.toFixed(0) : v.toFixed(2));
if (rounds > 1) {
  console.log(`\nmedians of ${rounds} rounds:`);
  for (const r of rows)
    console.log(
      `  ${r.workload.padEnd(12)} ${r.systemId.padEnd(16)} ${r.system.padEnd(21)} ${fmt(r.unit, r.value).padStart(8)} ${r.unit}  ` +
        `(rounds: ${r.roundValues.map((v) => fmt(r.unit, v)).join(', ')})`,
    );
}
const result = {
  note: arg('--note'),
  what:
    'npm run bench:page (bench/page/run.ts): fusediff wasm, TF.js wasm (threaded SIMD, setThreadsCount(cores)) and jax-js wasm ' +
    '(its Web Workers) in a cross-origin isolated page of headless Chromium, each with every core ' +
    "(navigator.hardwareConcurrency), each system in a fresh page; the workloads of npm run bench. On the page's WebGPU " +
    "adapter (webgpuAdapter), the reference MLP step on fusediff's WGSL (fusediff-webgpu), gpu.js's WebGPU path " +
    '(gpujs-webgpu: fusediff compiled for it), TF.js webgpu and jax-js webgpu, in the same rounds',
  howToRead:
    `value: samples/s (mlp, batch ${BATCH}) or GFLOP/s (matmul n x n x n; conv, ${(convFlops(CONV) / 1e6).toFixed(1)} MFLOP) ` +
    "at the median time of one run over tinybench's runs, in the round whose value is the median of the rounds " +
    '(roundValues: every round; each round runs each workload on each system in turn). Higher is better. ratios: ' +
    'fusediff over the peer (jax-js conv: the faster of jit and eager); webgpuRatios: the MLP step on fusediff-webgpu over ' +
    "each WebGPU system (timed with webgpuTiming). probeRelErr: an MLP row's probe loss against float64, checked before " +
    'timing (over 1e-4: no row, listed in failed). workersWhileRunning / workersAfterDispose: Web ' +
    "Workers live in the system's page before and after the row's dispose (fusediff's end with its plan; TF.js keeps its " +
    'pthread pool, jax-js its workers). loadAverage: the 1, 5 and 15 minute load of the machine, before and after; ' +
    'above the core count, other work shared the cores and the timings are noisy.',
  quick,
  rounds,
  timing,
  webgpuTiming,
  machine: {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    pageCores: pages[0]?.cores,
    chromium: browserVersion,
    userAgent: info.userAgent,
    node: process.version,
    loadAverage: { before: loadBefore, after: loadAfter },
    webgpuAdapter,
  },
  pages,
  rows,
  ratios,
  webgpuRatios,
  failed,
};
mkdirSync(dirname(out), { recursive: true });
writeFileSync(`${out}.tmp`, JSON.stringify(result, null, 2) + '\n');
renameSync(`${out}.tmp`, out);
console.log(`\nwrote ${out}`);
