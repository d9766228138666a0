/**
 * No import cycles in src/: every static `import … from` and `export … from` between its modules
 * that loads code, followed as a graph. `import type` is erased by the compiler, and dynamic
 * `import()` (a command's code loaded only when it runs) cannot leave a module half-initialised:
 * both are left out.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(__dirname, '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** The src modules a file loads through static imports and re-exports (not `import type`). */
function staticImports(file: string, text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s(?!type\s)[^;]*?\sfrom\s+'(\.{1,2}\/[^']+)'/gms)) {
    found.push(resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
  }
  return found;
}

/** A cycle as a list of modules (relative to src/), or undefined. */
function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'open') return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

describe('imports', () => {
  it('finds a cycle when there is one (the check can fail)', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
    ]);
    expect(findCycle(graph)).toEqual(['a', 'b', 'c', 'a']);
    const text = "import { b } from './b.js';\nexport { C } from '../c.js';\nimport type { E } from './e.js';\nconst d = await import('./d.js');";
    expect(staticImports('/x/a.ts', text)).toEqual(['/x/b.ts', '/c.ts']);
  });

  it('src/ has no import cycle, and demo.ts does not import the CLI', () => {
    const graph = new Map<string, string[]>();
    for (const file of sources(SRC))
      graph.set(
        relative(SRC, file),
        staticImports(file, readFileSync(file, 'utf8')).map((f) => relative(SRC, f)),
      );
    expect(findCycle(graph)).toBeUndefined();
    expect(graph.get('demo.ts')).not.toContain('cli.ts');
    // Only the entry point imports the command table.
    expect([...graph].filter(([, deps]) => deps.includes('cli.ts')).map(([f]) => f)).toEqual([]);
  });
});
