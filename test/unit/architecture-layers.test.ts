/**
 * The layering of src/ (README, "Layout"): a module may import only from its own layer or
 * below, so the base stays neutral, storage knows nothing of behaviour, behaviour knows
 * nothing of transport, and only the composition root sees everything. Reads the import
 * specifiers of every src/**\/*.ts file from its text (static `import`/`export ... from`,
 * `import(...)` with a literal, `typeof import(...)`), type-only imports included: a type
 * pulled from a layer above is the same back-arrow as a value.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

/** Layers, lowest first. A file's layer is that of its top folder under src/, or of its own name at the top. */
const BASE = 0;
const FOLDER_LAYERS: Record<string, number> = {
  protocol: BASE, // limits, schemas and compiled checks of the wire protocol
  geofence: 1, // pure geometry
  eta: 1, // arrival estimates: straight line, the router client
  storage: 2, // append-only log, checkpoints, journal, disk reserve
  telemetry: 3, // the archive
  shared: 4, // shared-state backends (memory, Redis)
  events: 5, // events for the dispatch system: event log, webhooks, delivery
  actors: 6, // behaviour
  cluster: 7, // placement, forwarding, takeover (may not exist yet)
  share: 7, // customer tracking links: tokens, revocations, state, streams (over the Tracker port)
  gateway: 8, // transport
  console: 8, // browser app
  client: 8, // typed client
  cli: 9, // composition root
};
const TOP_FILE_LAYERS: Record<string, number> = {
  'protocol.ts': BASE,
  'outcome.ts': BASE,
  'clock.ts': BASE,
  'config.ts': BASE,
  'log.ts': BASE,
  'metrics.ts': BASE,
  'node-flags.ts': BASE,
  'next-turn.ts': BASE,
  'worker-client.ts': BASE, // a helper thread's lifecycle, shared by telemetry/ and events/
  'thread-priority.ts': BASE, // a helper thread's CPU priority
  'app.ts': 9,
  'main.ts': 9,
};

/**
 * The browser app and the typed client ship outside the server: they may import only
 * modules that are plain protocol terms, besides their own folder.
 */
const BROWSER_ONLY_FOLDERS = new Set(['console', 'client']);
const BROWSER_SAFE: Record<string, string> = {
  'protocol.ts': 'the wire protocol',
  'outcome.ts': 'answers in protocol terms',
  'protocol/limits.ts': 'the protocol limits (plain constants)',
  // One sphere for the server's distances and the console's map projection; distance.ts
  // imports nothing, so it compiles for the browser as it is.
  'geofence/distance.ts': "the server's Earth radius",
};

/**
 * Imports that break the layering today and are known to go away. Each entry names the
 * importing file and the imported file (paths under src/) and why it is tolerated; an
 * entry that no longer matches an import fails the test, so the list only shrinks.
 * Empty: the cluster code (cluster-link, takeover, remote-calls) still lives in actors/
 * here, so tracker.ts importing it is same-layer. When it is moved to src/cluster by the
 * restructure, an actors/ file importing it goes here with the reason
 * "moved to src/cluster by the restructure" until the local facade stops needing it.
 */
const ALLOWED_VIOLATIONS: ReadonlyArray<{ from: string; to: string; reason: string }> = [];

/** Layer of a path under src/ (posix separators); undefined when none is assigned. */
function layerOf(path: string): number | undefined {
  const slash = path.indexOf('/');
  if (slash < 0) return TOP_FILE_LAYERS[path];
  return FOLDER_LAYERS[path.slice(0, slash)];
}

function topFolder(path: string): string | null {
  const slash = path.indexOf('/');
  return slash < 0 ? null : path.slice(0, slash);
}

/** Every .ts file under `dir`, as paths relative to SRC with posix separators. */
function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(full));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts'))
      out.push(relative(SRC, full).split(sep).join('/'));
  }
  return out.sort();
}

/**
 * The text with comments blanked out (strings and regular expressions kept), so an
 * import written in a comment is not read as one.
 */
function stripComments(text: string): string {
  let out = '';
  let i = 0;
  let prev = ''; // last significant character outside comments, to tell a regex from a division
  while (i < text.length) {
    const c = text[i] as string;
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
      continue;
    }
    if (c === "'" || c === '"' || c === '`' || (c === '/' && (prev === '' || '(,=:[!&|?{};'.includes(prev)))) {
      let j = i + 1;
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\\') j++;
        else if (c !== '`' && text[j] === '\n') break;
        j++;
      }
      out += text.slice(i, j + 1);
      i = j + 1;
      prev = c;
      continue;
    }
    out += c;
    if (!/\s/.test(c)) prev = c;
    i++;
  }
  return out;
}

/** Module specifiers the file imports or re-exports, in order. */
function importSpecifiers(text: string): string[] {
  const code = stripComments(text);
  const found: Array<{ at: number; spec: string }> = [];
  const patterns = [
    // import x from '…', import type { a, b } from '…', import * as n from '…'
    /(?:^|[;\n])\s*import\s+(?:type\s+)?[\w*{}\s,$]+?\s+from\s*(['"])([^'"\n]+)\1/g,
    // import '…' (for its effects)
    /(?:^|[;\n])\s*import\s*(['"])([^'"\n]+)\1/g,
    // export { a } from '…', export type { a } from '…', export * from '…', export * as n from '…'
    /(?:^|[;\n])\s*export\s+(?:type\s+)?(?:\*(?:\s+as\s+[\w$]+)?|\{[^}]*\})\s*from\s*(['"])([^'"\n]+)\1/g,
    // import('…') and typeof import('…'), with a literal
    /\bimport\s*\(\s*(['"`])([^'"`$\n]+)\1\s*\)/g,
  ];
  for (const re of patterns) {
    for (const m of code.matchAll(re)) found.push({ at: m.index ?? 0, spec: m[2] as string });
  }
  return found.sort((a, b) => a.at - b.at).map((f) => f.spec);
}

/** The file under src/ a relative specifier of `from` names, or null when it is a package or outside src/. */
function resolveInSrc(from: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const target = normalize(join(dirname(from), spec))
    .split(sep)
    .join('/');
  if (target.startsWith('..')) return null;
  return target.replace(/\.js$/, '.ts');
}

interface Edge {
  from: string;
  to: string;
  spec: string;
}

function edges(): Edge[] {
  const out: Edge[] = [];
  for (const file of sourceFiles(SRC)) {
    for (const spec of importSpecifiers(readFileSync(join(SRC, file), 'utf8'))) {
      const to = resolveInSrc(file, spec);
      if (to !== null) out.push({ from: file, to, spec });
    }
  }
  return out;
}

/** Why `edge` breaks the layering; null when it does not. */
function violation(edge: Edge): string | null {
  const { from, to } = edge;
  const lf = layerOf(from);
  const lt = layerOf(to);
  if (lf === undefined) return `${from} has no layer (add its folder or name to the layer list)`;
  if (lt === undefined) return `${to} has no layer (add its folder or name to the layer list)`;
  const folder = topFolder(from);
  if (folder !== null && BROWSER_ONLY_FOLDERS.has(folder) && topFolder(to) !== folder && !(to in BROWSER_SAFE)) {
    return `${from} imports '${edge.spec}' (${to}): src/${folder} may import only ${Object.keys(BROWSER_SAFE).join(', ')}`;
  }
  if (lt > lf) return `${from} (layer ${lf}) imports '${edge.spec}' (${to}, layer ${lt}) from a layer above it`;
  return null;
}

describe('architecture layers', () => {
  it('reads imports from the text, not from comments', () => {
    const text = [
      '/** import { a } from "./in-a-comment.js"; */',
      "// import b from './in-a-line-comment.js';",
      "import { type X, y } from '../one.js';",
      'import type {',
      '  Z,',
      "} from './two.js';",
      "import * as ns from 'node:fs';",
      "export { w } from './three.js';",
      "export type * from './four.js';",
      "const m = await import('./five.js');",
      "type T = typeof import('./six.js');",
      "const re = /'/; import './seven.js';",
      'const s = \'import q from "./in-a-string.js"\';',
    ].join('\n');
    assert.deepEqual(importSpecifiers(text), [
      '../one.js',
      './two.js',
      'node:fs',
      './three.js',
      './four.js',
      './five.js',
      './six.js',
      './seven.js',
    ]);
  });

  it('sees the imports of the source tree', () => {
    const all = edges();
    // A reader that found nothing would pass every check below.
    assert.ok(all.length > 200, `only ${all.length} imports found under ${SRC}`);
    assert.ok(all.some((e) => e.from === 'gateway/server.ts' && e.to === 'actors/api.ts'));
    for (const e of all) assert.ok(existsSync(join(SRC, e.to)), `${e.from} imports '${e.spec}': no ${e.to}`);
  });

  it('no module imports from a layer above its own', () => {
    const problems: string[] = [];
    const used = new Set<(typeof ALLOWED_VIOLATIONS)[number]>();
    for (const e of edges()) {
      const why = violation(e);
      if (why === null) continue;
      const allowed = ALLOWED_VIOLATIONS.find((a) => a.from === e.from && a.to === e.to);
      if (allowed !== undefined) used.add(allowed);
      else problems.push(why);
    }
    for (const a of ALLOWED_VIOLATIONS) {
      if (!used.has(a)) problems.push(`allow-list entry ${a.from} -> ${a.to} matches no violation any more: remove it`);
    }
    assert.deepEqual(problems, []);
  });
});
