// The page's pictures: the same Vega-Lite figures as the reports (plots/specs.ts), rendered by vega into a canvas.
// A view is built once per spec and then only handed new rows, so redrawing the loss curve while training is cheap.
import { parse, View } from 'vega';
import { compile } from 'vega-lite';
import type { Figure } from '../plots/specs.ts';

export class FigureView {
  private view?: View;
  private key = '';

  constructor(private readonly container: HTMLElement) {}

  /** Shows the figure: a new view when its spec changed, else the old one with the new rows. */
  async show(f: Figure): Promise<void> {
    const key = JSON.stringify(f.spec);
    if (!this.view || key !== this.key) {
      this.view?.finalize();
      this.container.replaceChildren();
      this.view = new View(parse(compile(f.spec).spec), { renderer: 'canvas', container: this.container, hover: false });
      this.key = key;
    }
    for (const [name, rows] of Object.entries(f.data))
      this.view.data(
        name,
        rows.map((r) => ({ ...r })),
      );
    // lay the figure out anew with the new rows: vega computes the room for the axes and the title once, on the
    // first run, unless told to resize, so a view first drawn with no data (or with narrower tick labels, as
    // after a backend switch or a reset) kept too little room on the left and cut off the y label and the title
    this.view.resize();
    await this.view.runAsync();
  }

  /** How many pixels of the drawing lie outside the canvas on each side (all 0: nothing is cut off). */
  clipped(): { left: number; top: number; right: number; bottom: number } | undefined {
    const canvas = this.container.querySelector('canvas');
    if (!this.view || !canvas) return undefined;
    const [ox, oy] = this.view.origin();
    const b = (this.view.scenegraph() as unknown as { root: { bounds: { x1: number; y1: number; x2: number; y2: number } } }).root.bounds;
    const ratio = canvas.width / Math.max(1, canvas.clientWidth || canvas.width);
    const [w, h] = [canvas.width / ratio, canvas.height / ratio];
    const out = (v: number) => Math.max(0, Math.round(v));
    return { left: out(-(ox + b.x1)), top: out(-(oy + b.y1)), right: out(ox + b.x2 - w), bottom: out(oy + b.y2 - h) };
  }
}
