// `npm run bench:gl`: the GL kernels with four outputs per thread against one output per thread, on every GL backend
// available here (headless-gl in Node), with the renderer that ran them: Mesa llvmpipe under Xvfb on a machine
// without a GPU, the GPU's own driver where there is one. Writes bench/results/gl-<renderer>.json.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { timer } from './timer.ts';
import { availableBackends, glRenderer, isGL } from '../compiler/index.ts';
import { glLaneRows, type GlLaneRow } from './fusediff/glLanes.ts';

const quick = process.argv.includes('--quick');
const time = timer(quick ? { time: 500, iterations: 2, warmups: 1 } : { time: 2000, iterations: 5, warmups: 2 });

const gls = availableBackends().filter((b) => isGL(b) && b !== 'webgl2');
if (gls.length === 0) throw new Error('bench:gl: no GL backend here (headless-gl needs a display: npm run bench:gl starts Xvfb)');
const machine = { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version };
const results: { backend: string; renderer: string; rows: GlLaneRow[] }[] = [];
for (const b of gls) {
  const renderer = glRenderer(b as 'headlessgl') ?? 'unknown';
  console.log(`${b}: renderer ${renderer}; ${machine.cpu}, ${machine.cores} cores`);
  results.push({ backend: b, renderer, rows: await glLaneRows(b, time, quick) });
}
// 'ANGLE (Mesa/X.org llvmpipe (LLVM 15.0.6, 256 bits) OpenGL 4.5 core)' -> llvmpipe;
// 'ANGLE (Collabora Ltd zink (NVIDIA H200) OpenGL 4.6 core)' -> zink-nvidia-h200
const tag = (results[0]?.renderer ?? 'unknown')
  .replace(/^ANGLE \((.*)\)$/, '$1')
  .replace(/Mesa\/X\.org|Collabora Ltd|OpenGL.*$|\(LLVM[^)]*\)/g, '')
  .toLowerCase()
  .replace(/[^a-z0-9]+/g, '-')
  .replace(/^-|-$/g, '');
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const path = new URL(`./results/gl-${tag}${quick ? '-quick' : ''}.json`, import.meta.url).pathname;
writeFileSync(`${path}.tmp`, JSON.stringify({ machine, quick, results }, null, 2) + '\n');
renameSync(`${path}.tmp`, path);
console.log(`wrote ${path}`);
process.exit(0);
