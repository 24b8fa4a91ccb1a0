// fusediff's matmul row: one n x n x n f32 matmul compiled to a single kernel on a given backend.
import type { BackendName, CompileOptions } from '../../compiler/index.ts';
import { compile, type Executable } from '../../compiler/index.ts';
import * as op from '../../dsl/ops.ts';
import { trace } from '../../dsl/trace.ts';
import type { MatmulPeer } from '../peers/types.ts';

export class FusediffMatmul implements MatmulPeer {
  readonly system = 'fusediff';
  backend: string;
  private exe?: Executable;
  private a?: Float32Array;
  private b?: Float32Array;
  private out?: Float32Array;

  constructor(
    private readonly requested: BackendName,
    private readonly options: CompileOptions = {},
  ) {
    this.backend = requested;
  }

  async setup(n: number): Promise<void> {
    await this.dispose(); // a plan per size: the previous one (and its worker threads) ends here
    this.exe = compile(
      trace(({ a, b }) => op.matmul(a, b), { a: [n, n], b: [n, n] }),
      { ...this.options, backend: this.requested },
    );
    this.a = Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
    this.b = Float32Array.from({ length: n * n }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
    this.out = new Float32Array(n * n);
  }

  /**
   * The product goes into one array of ours, as a caller repeating the matmul would (runDevice's `into`, as the conv
   * row): on wasm that saves a fresh copy of the output per run; elsewhere the copy is the read back, which also
   * synchronises (GL backends queue work until read).
   */
  async run(): Promise<void> {
    await this.exe!.runDeviceAsync({ a: this.a!, b: this.b! }, { into: { out: this.out! } }); // webasm: worker threads
  }

  /** frees the plan: its module, its memory and, on wasm, its worker threads (Web Workers in a page) */
  async dispose(): Promise<void> {
    this.exe?.dispose();
    this.exe = undefined;
  }
}
