// fusediff's conv row: one forward conv2d (NCHW input, OIHW weights, stride 1, 'same' padding) compiled on a backend.
import type { BackendName, CompileOptions } from '../../compiler/index.ts';
import { compile, type Executable } from '../../compiler/index.ts';
import * as op from '../../dsl/ops.ts';
import { trace } from '../../dsl/trace.ts';
import { CONV, convInputs, type ConvWorkload } from '../../workloads/reference.ts';
import type { ConvPeer } from '../peers/types.ts';

export class FusediffConv implements ConvPeer {
  readonly system = 'fusediff';
  backend: string;
  private exe?: Executable;
  private x?: Float32Array;
  private w?: Float32Array;
  private y?: Float32Array;

  constructor(
    private readonly requested: BackendName,
    private readonly options: CompileOptions = {},
  ) {
    this.backend = requested;
  }

  async setup(c: ConvWorkload = CONV): Promise<void> {
    const pad = (c.kernel - 1) / 2; // 'same' at stride 1 for an odd kernel
    this.exe = compile(
      trace(({ x, w }) => op.conv2d(x, w, { stride: c.stride, padding: [pad, pad, pad, pad] }), {
        x: [c.batch, c.inChannels, c.size, c.size],
        w: [c.outChannels, c.inChannels, c.kernel, c.kernel],
      }),
      { ...this.options, backend: this.requested },
    );
    this.backend = this.exe.backend;
    ({ x: this.x, w: this.w } = convInputs(c));
    this.y = new Float32Array(c.batch * c.outChannels * c.size * c.size); // 'same' padding at stride 1
  }

  /**
   * The output goes into one array of ours, as a caller running the same conv again and again would (runDevice's
   * `into`): on wasm that saves a fresh copy of the 512 KB output per run; elsewhere the copy is the read back.
   */
  async run(): Promise<void> {
    await this.exe!.runDeviceAsync({ x: this.x!, w: this.w! }, { into: { out: this.y! } });
  }

  async dispose(): Promise<void> {
    this.exe?.dispose();
    this.exe = undefined;
  }
}
