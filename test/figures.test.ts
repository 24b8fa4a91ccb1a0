// Every kind of picture rendered to PNG as the reports write it: the title, subtitle, axis labels and titles and the
// legend must be drawn, checked where the layout puts them (vega's scenegraph says where each text is; the PNG must
// have ink there and none in an empty stretch beside the title). The samples must not hide the data. The experiment's
// own pictures are checked in test/experiment.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PNG } from 'pngjs';
import { parse, View } from 'vega';
import { compile } from 'vega-lite';
import type { NDArray } from '../core/ndarray.ts';
import { mixtures } from '../data/mixtures.ts';
import { cfgFigure, gridFigure, lossFigure, palette, scatterFigure, SERIES, type Figure } from '../plots/specs.ts';
import { figurePng, figureSvg, imageUrls } from '../plots/render.ts';

interface Box {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}
interface SceneNode {
  role?: string;
  marktype?: string;
  x?: number;
  y?: number;
  text?: string | string[];
  opacity?: number;
  bounds?: Box;
  items?: SceneNode[];
}

/** The boxes (in CSS pixels of the picture) of every text item, by its mark's role: 'title-text', 'axis-label', ... */
const textBoxes = async (f: Figure): Promise<Map<string, Box[]>> => {
  const view = new View(parse(compile(f.spec).spec), { renderer: 'none' });
  for (const [name, rows] of Object.entries(f.data))
    view.data(
      name,
      rows.map((r) => ({ ...r })),
    );
  await view.runAsync();
  const [ox, oy] = view.origin();
  const out = new Map<string, Box[]>();
  const walk = (node: SceneNode, dx: number, dy: number, role?: string) => {
    const r = node.role ?? role;
    if (node.marktype === 'text')
      for (const item of node.items ?? []) {
        const b = item.bounds;
        const text = Array.isArray(item.text) ? item.text.join('') : item.text;
        // labels that vega hides to avoid overlaps stay in the scenegraph with opacity 0
        if (b && text && b.x2 > b.x1 && item.opacity !== 0)
          out.set(r!, [...(out.get(r!) ?? []), { x1: b.x1 + dx, y1: b.y1 + dy, x2: b.x2 + dx, y2: b.y2 + dy }]);
      }
    for (const child of node.items ?? []) {
      const isGroupItem = node.marktype === 'group';
      walk(child, dx + (isGroupItem ? (child.x ?? 0) : 0), dy + (isGroupItem ? (child.y ?? 0) : 0), node.marktype ? r : role);
    }
  };
  walk((view.scenegraph() as unknown as { root: SceneNode }).root, ox, oy);
  view.finalize();
  return out;
};

const decode = (bytes: Uint8Array): PNG => PNG.sync.read(Buffer.from(bytes));

/**
 * Dark pixels (every channel below 110: the texts' black and grey, not the lighter ticks, grid and frame, nor the
 * coloured marks) in a box given in CSS pixels, widened by `pad` (vega measures text without a font, so its boxes
 * are estimates a few pixels off the glyphs resvg draws).
 */
const ink = (png: PNG, box: Box, scale: number, pad = { x: 6, y: 3 }): number => {
  const b = { x1: box.x1 - pad.x, x2: box.x2 + pad.x, y1: box.y1 - pad.y, y2: box.y2 + pad.y };
  let dark = 0;
  for (let y = Math.max(0, Math.floor(b.y1 * scale)); y < Math.min(png.height, Math.ceil(b.y2 * scale)); y++)
    for (let x = Math.max(0, Math.floor(b.x1 * scale)); x < Math.min(png.width, Math.ceil(b.x2 * scale)); x++) {
      const o = (y * png.width + x) * 4;
      if (Math.max(png.data[o], png.data[o + 1], png.data[o + 2]) < 110) dark++;
    }
  return dark;
};

/** Renders at scale 2 and checks every text role asked for: each has boxes, and ink in them. Returns the boxes. */
const checkText = async (f: Figure, roles: readonly string[]): Promise<{ png: PNG; boxes: Map<string, Box[]> }> => {
  const png = decode(await figurePng(f, { scale: 2 }));
  const boxes = await textBoxes(f);
  for (const role of roles) {
    const found = boxes.get(role) ?? [];
    assert.ok(found.length > 0, `no '${role}' text in the layout; roles: ${[...boxes.keys()].join(', ')}`);
    for (const b of found) assert.ok(ink(png, b, 2) >= 6, `'${role}' box ${JSON.stringify(b)} has ink ${ink(png, b, 2)}: nothing drawn`);
  }
  // the control: the stretch right of the title, as tall as it, is blank (the check above can tell text from none)
  const title = boxes.get('title-text')![0];
  const blank = { x1: title.x2 + 20, y1: title.y1, x2: png.width / 2 - 2, y2: title.y2 };
  if (blank.x2 - blank.x1 > 20) assert.equal(ink(png, blank, 2), 0, 'right of the title');
  return { png, boxes };
};

const AXES = ['title-text', 'title-subtitle', 'axis-label', 'axis-title', 'legend-label'];

test('scatter: title, subtitle, ticks and axis titles, legend drawn; data on top of the samples', async () => {
  const m = mixtures.eightGaussians;
  const reference = m.sample(2000, 4242);
  // samples exactly on the data points: where both are drawn, the data's near-black must win
  const samples: NDArray = { shape: [2002, 2], data: Float64Array.from([...reference.data, 40, 0, NaN, 0]) };
  const f = scatterFigure({
    title: 'eightGaussians · SP+CFG 3 · test',
    subtitle: ['model SP, CFG 3, EMA weights'],
    samples,
    reference,
    bounds: m.bounds,
  });
  const { png, boxes } = await checkText(f, AXES);
  const legend = (boxes.get('legend-label') ?? []).length;
  assert.equal(legend, 3, 'legend: data, samples, outside the window');
  const svg = await figureSvg(f);
  for (const s of [
    'eightGaussians · SP+CFG 3 · test',
    SERIES.data,
    SERIES.samples,
    SERIES.outside,
    '1 of 2002 samples outside',
    'not finite',
  ])
    assert.ok(svg.includes(s), `the SVG says '${s}'`);
  // the data are drawn after (over) the samples: in the SVG the reference layer comes later
  assert.ok(svg.indexOf(palette.data) > svg.indexOf(palette.samples), 'data drawn after the samples');
  // and in the pixels: sample blue never dominates over a data point; near-black pixels exist
  let dark = 0;
  for (let i = 0; i < png.data.length; i += 4) if (png.data[i] < 60 && png.data[i + 1] < 60 && png.data[i + 2] < 80) dark++;
  assert.ok(dark > 500, `${dark} near-black data pixels`);
});

test('scatter: class colours get one legend entry per class', async () => {
  const m = mixtures.eightGaussians;
  const samples = m.sample(80, 1);
  const f = scatterFigure({ title: 'classes', samples, classes: Array.from({ length: 80 }, (_, i) => i % 8), bounds: m.bounds });
  const boxes = await textBoxes(f);
  assert.equal(boxes.get('legend-label')?.length, 8);
  assert.throws(() => scatterFigure({ title: 'x', samples, classes: [1], bounds: m.bounds }), /1 classes for 80 samples/);
  assert.throws(() => scatterFigure({ title: 'x', samples, bounds: [1, 0, 0, 1] }), /bounds must be finite/);
});

test('digit grid: title, a digit label over every column, the pixel legend; images embedded', async () => {
  const images: NDArray = { shape: [30, 1, 16, 16], data: Float64Array.from({ length: 30 * 256 }, (_, i) => Math.sin(i / 5)) };
  const f = gridFigure({
    title: 'mnist16 · SP · test',
    subtitle: ['CFG 3 · EMA weights'],
    columns: 10,
    columnTitle: 'digit the samples were conditioned on',
    images: imageUrls(images).map((url, i) => ({ url, column: String(i % 10) })),
  });
  const { boxes } = await checkText(f, ['title-text', 'title-subtitle', 'axis-label', 'axis-title', 'legend-label', 'legend-title']);
  const columnLabels = (boxes.get('axis-label') ?? []).length;
  assert.equal(columnLabels, 10, 'one label per column');
  const svg = await figureSvg(f);
  assert.equal(svg.match(/<image /g)?.length, 30, 'every sample is an image mark');
  for (let d = 0; d < 10; d++) assert.ok(svg.includes(`>${d}</text>`), `column ${d} labelled`);
});

test('loss curve: log scale, both series in the legend, title and axes drawn', async () => {
  const losses = Array.from({ length: 200 }, (_, i) => 0.5 * Math.exp(-i / 50) + 0.05);
  const f = lossFigure({
    title: 'eightGaussians · training loss',
    series: [
      { name: 'stage1 (MSE)', losses },
      { name: 'SP', losses, firstStep: 201 },
    ],
  });
  const { boxes } = await checkText(f, AXES);
  assert.equal(boxes.get('legend-label')?.length, 2);
  assert.ok(JSON.stringify(compile(f.spec).spec).includes('"type":"log"'), 'y is on a log scale');
  assert.equal(f.data.raw.length, 400);
});

test('metric against the CFG scale: one panel per metric, a line per model', async () => {
  const pts = (a: number, b: number) => [
    { series: 'stage1 (MSE)', cfg: 1, value: a },
    { series: 'stage1 (MSE)', cfg: 3, value: b },
    { series: 'SP', cfg: 1, value: a - 1 },
    { series: 'SP', cfg: 3, value: b - 1 },
  ];
  const f = cfgFigure({
    title: 'mnist16 · metrics against the CFG scale',
    subtitle: ['test'],
    panels: [
      { metric: 'FD-MNIST (lower is better)', points: pts(10, 7) },
      { metric: 'inception score (higher is better)', points: pts(6, 8) },
    ],
  });
  const { boxes } = await checkText(f, [...AXES, 'legend-title']);
  assert.equal(boxes.get('axis-title')?.length, 4, 'two axis titles per panel');
  const svg = await figureSvg(f);
  for (const s of ['FD-MNIST (lower is better)', 'inception score (higher is better)', 'CFG scale']) assert.ok(svg.includes(s), s);
});

test('a title drawn in the background colour has no ink in its box (the text check can fail)', async () => {
  const losses = Array.from({ length: 50 }, (_, i) => 1 / (i + 1));
  const f = lossFigure({ title: 'a title', subtitle: ['a subtitle'], series: [{ name: 'a', losses }] });
  const title = f.spec.title as object;
  const invisible: Figure = { ...f, spec: { ...f.spec, title: { ...title, text: 'a title', color: 'white', subtitleColor: 'white' } } };
  const boxes = await textBoxes(invisible);
  const png = decode(await figurePng(invisible, { scale: 2 }));
  for (const role of ['title-text', 'title-subtitle']) {
    assert.equal(boxes.get(role)?.length, 1, role);
    assert.equal(ink(png, boxes.get(role)![0], 2), 0, `${role}: nothing visible is drawn`);
  }
  const seen = decode(await figurePng(f, { scale: 2 }));
  assert.ok(ink(seen, boxes.get('title-text')![0], 2) >= 6, 'the same box with the title drawn');
});
