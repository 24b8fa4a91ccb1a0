// A readable listing of a kernel IR (what `fusediff inspect` shows for the wasm backend): the loops over the output
// and the reduction, and the value of each element as one expression.
import type { Atom, Ix } from './indexExpr.ts';
import type { Cond, KernelIR, Scalar } from './ir.ts';

const atom = (a: Atom): string => {
  switch (a.k) {
    case 'var':
      return `i${a.v}`;
    case 'div':
      return `(${ix(a.x)}) / ${a.d}`;
    case 'mod':
      return `(${ix(a.x)}) % ${a.d}`;
    case 'clamp':
      return `clamp(${ix(a.x)}, ${a.lo}, ${a.hi})`;
  }
};

export const ix = (x: Ix): string => {
  const parts = x.terms.map(([a, c]) => (c === 1 ? atom(a) : `${c}*${atom(a)}`));
  if (x.c !== 0 || parts.length === 0) parts.push(String(x.c));
  return parts.join(' + ').replace(/\+ -/g, '- ');
};

const cond = (c: Cond): string => `${c.lo} <= ${ix(c.ix)} <= ${c.hi}${c.step ? ` && ${ix(c.ix)} % ${c.step} == 0` : ''}`;

export const scalar = (s: Scalar): string => {
  switch (s.k) {
    case 'lit':
      return String(s.v);
    case 'load':
      return `%${s.buf}[${ix(s.at)}]`;
    case 'un':
      return `${s.op}(${scalar(s.x)})`;
    case 'bin':
      return `${s.op}(${scalar(s.a)}, ${scalar(s.b)})`;
    case 'where':
      return `where(${scalar(s.c)}, ${scalar(s.a)}, ${scalar(s.b)})`;
    case 'guard':
      return `(${s.conds.map(cond).join(' && ')} ? ${scalar(s.x)} : 0)`;
    case 'pick':
      return `(${cond(s.cond)} ? ${scalar(s.a)} : ${scalar(s.b)})`;
    case 'random':
      return `${s.dist}(seed ${s.seed}, stream ${s.stream}, counter ${scalar(s.counter)}, element ${ix(s.at)})`;
    case 'reduce':
      return `${s.op}[${s.vars.map((v) => `i${v}`).join(', ')}](${scalar(s.body)})`;
  }
};

export const printKernelIR = (k: KernelIR): string => {
  const loops = k.outVars.map((v, d) => `for i${v} in 0..${k.shape[d]}`);
  const red = [...k.vars.values()].filter((v) => v.role === 'red').map((v) => `i${v.id} in 0..${v.extent}`);
  return [
    `${loops.join(', ') || 'scalar'}${red.length ? `  (reduce over ${red.join(', ')})` : ''}:`,
    ...k.extras.map((e) => `  %${e.node} = ${scalar(e.value)}`),
    `  out = ${scalar(k.value)}`,
  ].join('\n');
};
