// Every flag a message suggests exists on the command that prints it: the string literals of each
// command's source files (its CLI file, its experiment, the shared layers it uses) are scanned for
// `--flag` and each is looked up in that command's --help. A flag after `awty <command>` in the same
// text is looked up in that other command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(repo, 'dist', 'src', 'cli', 'main.js');

const DATA = ['src/data/datasets.ts', 'src/data/loader.ts', 'src/data/batch.ts', 'src/data/findex.ts', 'src/data/transforms.ts', 'src/data/worker.ts', 'src/data/tensors.ts'];
const SOURCES: Record<string, string[]> = {
  'train-tc': ['src/cli/train-tc.ts', 'src/experiments/tc.ts', 'src/experiments/common.ts', ...DATA],
  finetune: ['src/cli/finetune.ts', 'src/experiments/finetune.ts', 'src/experiments/common.ts', ...DATA],
  extract: ['src/cli/extract.ts', 'src/data/extract.ts', 'src/data/ffmpeg.ts'],
  figure1: ['src/cli/figure1.ts', 'src/scaling/analysis.ts', 'src/scaling/plot.ts', 'src/scaling/report.ts', 'src/scaling/results.ts', 'src/scaling/outputs.ts'],
  demo: ['src/cli/demo.ts', 'src/experiments/demo.ts'],
  knn: ['src/cli/knn.ts', 'src/experiments/knn.ts', ...DATA],
  scaling: ['src/cli/scaling.ts', 'src/scaling/joint.ts', 'src/scaling/joint-analysis.ts', 'src/scaling/joint-outputs.ts', 'src/scaling/results.ts'],
};

const helpCache = new Map<string, Set<string>>();
function flagsOf(command: string): Set<string> {
  let f = helpCache.get(command);
  if (!f) {
    const r = spawnSync(process.execPath, [cli, command, '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `awty ${command} --help: ${r.stderr}`);
    f = new Set([...r.stdout.matchAll(/--[a-zA-Z][\w-]*/g)].map((m) => m[0]));
    helpCache.set(command, f);
  }
  return f;
}

/** The texts of the string and template literals of a source file (comments are not looked at). */
function literals(file: string): { text: string; line: number }[] {
  const src = ts.createSourceFile(file, readFileSync(path.join(repo, file), 'utf8'), ts.ScriptTarget.Latest, true);
  const out: { text: string; line: number }[] = [];
  const visit = (n: ts.Node): void => {
    const line = (): number => src.getLineAndCharacterOfPosition(n.getStart()).line + 1;
    if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) out.push({ text: n.text, line: line() });
    // a template is one text, its substitutions standing as `{}`
    if (ts.isTemplateExpression(n)) out.push({ text: n.head.text + n.templateSpans.map((sp) => `{}${sp.literal.text}`).join(''), line: line() });
    ts.forEachChild(n, visit);
  };
  visit(src);
  return out;
}

test('every --flag in a message exists on the command that prints it', () => {
  const missing: string[] = [];
  let checked = 0;
  for (const [command, files] of Object.entries(SOURCES)) {
    for (const file of files) {
      let lits: { text: string; line: number }[];
      try {
        lits = literals(file);
      } catch {
        continue; // a layer file this checkout does not have
      }
      for (const { text, line } of lits) {
        // split at "awty <command>": what follows belongs to that command
        const parts = text.split(/awty ([a-z][\w-]*)/);
        for (let i = 0; i < parts.length; i += 2) {
          const owner = i === 0 ? command : parts[i - 1]!;
          if (!(owner in SOURCES)) continue;
          for (const m of parts[i]!.matchAll(/(?<![\w-])--([a-zA-Z][\w-]*)/g)) {
            checked++;
            if (!flagsOf(owner).has(`--${m[1]}`)) missing.push(`${file}:${line}: --${m[1]} (awty ${owner} has no such flag)`);
          }
        }
      }
    }
  }
  assert.ok(checked > 40, `${checked} flags checked`);
  assert.deepEqual(missing, []);
});
