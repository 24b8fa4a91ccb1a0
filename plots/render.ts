// Figures rendered in Node: the Vega-Lite spec compiled to Vega, run headless (no DOM, no canvas) into an SVG, and
// the SVG rasterised by resvg into a PNG with the Inter font that ships as an npm package, so a picture's text
// looks the same on every machine whatever fonts it has installed.
import { createRequire } from 'node:module';
import { Resvg } from '@resvg/resvg-js';
import { parse, View } from 'vega';
import { compile } from 'vega-lite';
import type { NDArray } from '../core/ndarray.ts';
import { imageGrid } from '../storage/png.ts';
import { writeFileAtomic } from '../storage/atomicWrite.ts';
import type { Figure } from './specs.ts';

const require = createRequire(import.meta.url);
const fontFiles = ['400Regular/Inter_400Regular.ttf', '700Bold/Inter_700Bold.ttf'].map((f) =>
  require.resolve(`@expo-google-fonts/inter/${f}`),
);

/** The figure as SVG text: its spec compiled by vega-lite, its named data sets filled, run by vega without a renderer. */
export const figureSvg = async (f: Figure): Promise<string> => {
  const view = new View(parse(compile(f.spec).spec), { renderer: 'none' });
  try {
    for (const [name, rows] of Object.entries(f.data))
      view.data(
        name,
        rows.map((r) => ({ ...r })),
      );
    return await view.toSVG();
  } finally {
    view.finalize();
  }
};

/** The figure as PNG bytes at `scale` times its CSS size (default 2, sharp on high-density screens). */
export const figurePng = async (f: Figure, { scale = 2 }: { scale?: number } = {}): Promise<Uint8Array> => {
  const svg = await figureSvg(f);
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: { fontFiles, loadSystemFonts: false, defaultFontFamily: 'Inter', sansSerifFamily: 'Inter' },
  });
  return new Uint8Array(resvg.render().asPng());
};

/** Renders the figure and writes the PNG atomically (a reader never sees half a picture). */
export const writeFigure = async (file: string, f: Figure, options?: { scale?: number }): Promise<void> =>
  writeFileAtomic(file, await figurePng(f, options));

/** Each image of [N, C, H, W] (values in [-1, 1]) as a data: URL of a PNG `scale` times its size, for image marks. */
export const imageUrls = (images: NDArray, scale = 2): string[] => {
  const [n, ...rest] = images.shape;
  const per = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: n }, (_, i) => {
    const one = { shape: [1, ...rest], data: images.data.subarray(i * per, (i + 1) * per) };
    return `data:image/png;base64,${Buffer.from(imageGrid(one, { cols: 1, scale, pad: 0 })).toString('base64')}`;
  });
};
