// Makes the example pictures under docs/figures/ from a report's PNGs (by default `npm start`'s, in out/default/):
// each is halved (2x2 pixel blocks averaged), so the committed copies stay small; the report's own are at twice
// their CSS size; a picture without colour is stored as grey levels.
// `node --import tsx scripts/docs-figures.ts [report folder] [to folder] [picture ...]` (default: npm start's four
// README pictures into docs/figures; docs/RESULTS.md's pictures go to docs/results/<table>)
import fs from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';

const [from = 'out/default', to = 'docs/figures', ...named] = process.argv.slice(2);
const pictures = named.length
  ? named
  : ['eightGaussians-SP_CFG_3.png', 'mnist16-SP_CFG_3.png', 'eightGaussians-loss.png', 'mnist16-cfg.png'];

const halve = (src: PNG): PNG => {
  const out = new PNG({ width: src.width >> 1, height: src.height >> 1 });
  for (let y = 0; y < out.height; y++)
    for (let x = 0; x < out.width; x++)
      for (let c = 0; c < 4; c++) {
        let sum = 0;
        for (const [dx, dy] of [
          [0, 0],
          [1, 0],
          [0, 1],
          [1, 1],
        ])
          sum += src.data[((2 * y + dy) * src.width + 2 * x + dx) * 4 + c];
        out.data[(y * out.width + x) * 4 + c] = Math.round(sum / 4);
      }
  return out;
};

fs.mkdirSync(to, { recursive: true });
for (const name of pictures) {
  const png = halve(PNG.sync.read(fs.readFileSync(path.join(from, name))));
  // a picture with no colour but its grey-blue subtitle (the digit grid) is stored as grey levels: a third of the bytes
  let grey = true;
  for (let i = 0; i < png.data.length && grey; i += 4)
    grey = Math.max(png.data[i], png.data[i + 1], png.data[i + 2]) - Math.min(png.data[i], png.data[i + 1], png.data[i + 2]) <= 32;
  const bytes = PNG.sync.write(png, { colorType: grey ? 0 : 2 });
  fs.writeFileSync(path.join(to, name), bytes);
  console.log(`${path.join(to, name)}: ${(bytes.length / 1024).toFixed(0)} KiB`);
}
