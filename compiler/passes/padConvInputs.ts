// padConvInputs: Graph -> Graph, for the wasm backend. A conv2d with padding reads its input through a guard (zero
// outside the image) at every multiply-add; with the padded input materialised once (a pad node, which fusion gives
// its own buffer), the convolution's loads are plain affine reads that vectorise. simplify folds the other way
// (conv2d(pad(x)) into a padded conv2d, better for gpu.js), so this runs after it.
import { GraphBuilder } from '../../core/builder.ts';
import type { Graph } from '../../core/ir.ts';

export const padConvInputs = (graph: Graph): Graph => {
  if (!graph.nodes.some((n) => n.op === 'conv2d' && n.attrs.padding.some((p) => p !== 0))) return graph;
  const b = new GraphBuilder();
  const map = new Map<number, number>();
  for (const n of graph.nodes) {
    const ins = n.inputs.map((i) => map.get(i)!);
    b.siteOf = () => n.site;
    if (n.op === 'conv2d' && n.attrs.padding.some((p) => p !== 0)) {
      const [pt, pb, pl, pr] = n.attrs.padding;
      const padded = b.emit('pad', [ins[0]], { lo: [0, 0, pt, pl], hi: [0, 0, pb, pr], interior: [0, 0, 0, 0] }).id;
      map.set(n.id, b.emit('conv2d', [padded, ins[1]], { stride: n.attrs.stride, padding: [0, 0, 0, 0] }, n.shape).id);
    } else map.set(n.id, b.emit(n.op, ins, n.attrs as never, n.shape).id);
  }
  return b.build(graph.outputs.map((o) => ({ name: o.name, id: map.get(o.id)! })));
};
