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
    await this.view.runAsync();
  }
}
