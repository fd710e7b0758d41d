/**
 * The documentation as a reader meets it: the README stays a short place to start, its quick start
 * is the commands CI runs, and every relative link in the README and the docs leads to a file (and,
 * with a #fragment, to a heading) that exists. The options tables of docs/cli.md are checked
 * against `--help` in cli.operator.test.ts; the host examples' links in servers.test.ts.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/cli-process.js';

const read = (file: string) => readFileSync(path.join(REPO_ROOT, file), 'utf8');

/** The Markdown files a reader follows links through. */
const DOCS = [
  'README.md',
  'CONTRIBUTING.md',
  'bench/README.md',
  ...readdirSync(path.join(REPO_ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** Text outside fenced code blocks and inline code spans: where Markdown makes links and headings. */
function prose(markdown: string): string[] {
  const lines: string[] = [];
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      continue;
    }
    if (!fenced) lines.push(line);
  }
  return lines;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, each space a hyphen. */
function headingSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** Every anchor a Markdown file has, numbered as GitHub numbers repeated headings. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const line of prose(markdown)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = headingSlug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** The relative links of a Markdown file: [text](target), outside code. */
function relativeLinks(markdown: string): string[] {
  const links: string[] = [];
  for (const line of prose(markdown)) {
    const text = line.replace(/`[^`]*`/g, '``');
    for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = m[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
      links.push(target);
    }
  }
  return links;
}

describe('headingSlug', () => {
  it.for([
    ['`ocsp-renewer renew`', 'ocsp-renewer-renew'],
    ['`--reload`', '--reload'],
    ['What "valid" means', 'what-valid-means'],
    ['Fleet scale (opt-in: `-c fleet=true`)', 'fleet-scale-opt-in--c-fleettrue'],
    ['Is everything healthy? `status`', 'is-everything-healthy-status'],
  ])('should make %s into #%s', ([heading, slug], { expect }) => {
    expect(headingSlug(heading!)).toBe(slug);
  });
});

describe('the README', () => {
  const readme = read('README.md');

  it('should be at most 400 lines', () => {
    expect(readme.trimEnd().split('\n').length).toBeLessThanOrEqual(400);
  });

  it('should start from the commands CI runs: npm ci && npm run demo, then npm test', () => {
    const quickStart = readme.slice(readme.indexOf('## Quick start'));
    expect(quickStart).toContain('npm ci && npm run demo');
    expect(quickStart).toMatch(/^npm test\b/m);
    const ci = read('.ci/run');
    expect(ci).toMatch(/^npm ci\b/m);
    expect(ci).toMatch(/^npm test$/m);
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    expect(scripts).toHaveProperty('demo');
    expect(scripts).toHaveProperty('test');
  });

  it('should index every file of docs/', () => {
    const linked = new Set(relativeLinks(readme).map((l) => l.split('#')[0]));
    for (const doc of DOCS.filter((d) => d.startsWith('docs/'))) {
      expect(linked.has(doc), `README.md does not link ${doc}`).toBe(true);
    }
  });
});

describe('relative links', () => {
  it.for(DOCS)('every relative link in %s leads to a file and heading that exist', (doc, { expect }) => {
    const dir = path.dirname(path.join(REPO_ROOT, doc));
    const broken: string[] = [];
    for (const link of relativeLinks(read(doc))) {
      const [file, fragment] = link.split('#', 2) as [string, string | undefined];
      const target = file === '' ? path.join(REPO_ROOT, doc) : path.resolve(dir, decodeURI(file));
      if (path.relative(REPO_ROOT, target).startsWith('..')) {
        broken.push(`${link}: outside the repository`);
        continue;
      }
      if (!existsSync(target)) {
        broken.push(`${link}: no such file`);
        continue;
      }
      if (fragment !== undefined && statSync(target).isFile() && target.endsWith('.md')) {
        if (!anchorsOf(readFileSync(target, 'utf8')).has(fragment)) {
          broken.push(`${link}: no heading #${fragment} in ${path.relative(REPO_ROOT, target)}`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('finds a link, a missing file and a missing heading (the checker itself)', () => {
    const links = relativeLinks(
      'See [a](docs/a.md#x), `[not](code.md)`, [web](https://e.org).\n```\n[no](b.md)\n```',
    );
    expect(links).toEqual(['docs/a.md#x']);
    expect(anchorsOf('# A\n## `--reload`\n## B\n## B\n```\n# not\n```')).toEqual(
      new Set(['a', '--reload', 'b', 'b-1']),
    );
  });
});
