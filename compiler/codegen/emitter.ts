// A small statement emitter with block scopes: values computed inside a loop body are memoised only there. The
// keyword that declares a constant is the language's: `const` in gpu.js's JavaScript, `let` in WGSL.
export class Emitter {
  private readonly lines: string[] = [];
  private readonly scopes: Map<string, string>[] = [new Map()];
  private next = 0;

  constructor(private readonly declare: 'const' | 'let' = 'const') {}

  /** Emits `const vN = expr;` once per key in the visible scopes and returns the variable. */
  memo(key: string, make: () => string): string {
    for (let s = this.scopes.length - 1; s >= 0; s--) {
      const hit = this.scopes[s].get(key);
      if (hit) return hit;
    }
    const expr = make();
    const name = this.let(expr);
    this.scopes[this.scopes.length - 1].set(key, name);
    return name;
  }

  /** Makes `name` the value of `key` in the current scope (a value computed by hand, e.g. an accumulator). */
  bind(key: string, name: string): void {
    this.scopes[this.scopes.length - 1].set(key, name);
  }

  /** A fresh constant; plain identifiers and literals are returned as they are. */
  let(expr: string): string {
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(expr) || /^-?[0-9.]+(e[-+]?[0-9]+)?$/.test(expr)) return expr;
    const name = `v${this.next++}`;
    this.line(`${this.declare} ${name} = ${expr};`);
    return name;
  }

  fresh(prefix: string): string {
    return `${prefix}${this.next++}`;
  }

  line(text: string): void {
    this.lines.push(`${'  '.repeat(this.scopes.length)}${text}`);
  }

  open(header: string): void {
    this.line(`${header} {`);
    this.scopes.push(new Map());
  }

  close(): void {
    this.scopes.pop();
    this.line('}');
  }

  text(): string {
    return this.lines.join('\n');
  }
}

/** A float literal that gpu.js types as a float (always with a decimal point or exponent). */
export const lit = (v: number): string => {
  if (Number.isNaN(v)) return '(0.0 / 0.0)';
  // a real infinity on every gpu.js backend (measured on cpu, webasm and headless-gl), where a literal like 1e39
  // would be clamped to the largest float on GL
  if (v === Infinity) return '(1.0 / 0.0)';
  if (v === -Infinity) return '(-1.0 / 0.0)';
  if (Object.is(v, -0)) return '(-0.0)'; // String(-0) is '0': the sign (1 / -0 = -Infinity) would be lost
  const s = String(v);
  const f = /[.e]/.test(s) ? s : `${s}.0`;
  return v < 0 ? `(${f})` : f; // parenthesised: a unary minus before it must not read as a decrement (--1.5)
};

/** a + b over float expressions, folding a literal zero. */
export const add = (a: string, b: string): string => (a === '0.0' ? b : b === '0.0' ? a : `(${a} + ${b})`);
/** a * c for a number c, folding 0 and 1. */
export const mulc = (a: string, c: number): string => (c === 0 || a === '0.0' ? '0.0' : c === 1 ? a : `(${a} * ${lit(c)})`);
/** Reads outside the source are clamped, then masked: every backend reads in bounds. */
export const clamp = (x: string, hi: number): string => (hi === 0 ? '0.0' : `Math.min(Math.max(${x}, 0.0), ${lit(hi)})`);
