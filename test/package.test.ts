// The package as others get it: `npm pack` holds no tests, benchmarks or CI files; the tarball
// installs into a fresh project (dependencies from the npm cache, the registry only for what the
// cache lacks); without libtorch the install succeeds, the addon-free sub-paths work and the main
// entry names the command that builds the addon there; that command (here with AWTY_PREBUILT, the
// build of this checkout, instead of a compile of several minutes) makes the engine load; and a
// strict TypeScript program (exactOptionalPropertyTypes, skipLibCheck: false) type-checks against
// the package's declarations.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { tmpdir } from './helpers/oracle.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { name: string; version: string; bin: Record<string, string> };
const root = tmpdir('awty-pack-');
after(() => rmSync(root, { recursive: true, force: true }));

function run(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 26 });
  if (r.error) throw r.error;
  return r;
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** A lockfile for `consumer`: the tarball plus this checkout's locked versions of its dependencies. */
function consumerLock(tarball: string, devNames: string[]): { manifest: object; lock: object } {
  const lock = JSON.parse(readFileSync(path.join(repo, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> };
  const self = lock.packages['']!;
  const dev = Object.fromEntries(devNames.map((n) => [n, lock.packages[`node_modules/${n}`]!['version'] as string]));
  const manifest = { name: 'consumer', private: true, type: 'module', dependencies: { [pkg.name]: `file:${tarball}` }, devDependencies: dev };
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', dependencies: manifest.dependencies, devDependencies: dev },
    [`node_modules/${pkg.name}`]: { version: pkg.version, resolved: `file:${tarball}`, dependencies: self['dependencies'], bin: pkg.bin, hasInstallScript: true },
  };
  for (const [k, v] of Object.entries(lock.packages)) {
    if (!k) continue;
    if (!v['dev']) packages[k] = v;
    else if (devNames.includes(k.slice('node_modules/'.length)) || k === 'node_modules/undici-types') packages[k] = v;
  }
  return { manifest, lock: { name: 'consumer', lockfileVersion: 3, requires: true, packages } };
}

const PROGRAM = `
import { models, torch, type scaling as S } from '${pkg.name}';
import { fitAccuracy, predict, type Fit } from '${pkg.name}/scaling';
import { DTYPES, writeFileAtomic, type DType } from '${pkg.name}/io/core';

export function width(t: torch.Tensor): number {
  const n: number = t.size(0);
  const shape: number[] = t.size();
  return n + shape.length;
}
export const name: models.ModelName = 'resnet18';
export const build = (): models.Classifier => models.create(name, { numClasses: 10 });
// @ts-expect-error: not an architecture's name
export const wrong = (): models.Classifier => models.create('resnet9');
export const fit: Fit = fitAccuracy('loglinear', [1, 10, 100], [20, 30, 40]);
export const at1000: number = predict(fit, 1000);
export const f32: DType = DTYPES[0] ?? 'float32';
export type Analysis = S.Figure1Analysis;
export const save = (p: string): Promise<void> => writeFileAtomic(p, async (fh) => { await fh.writeFile('x'); });
`;

test('the packed tarball installs into a fresh project, builds its addon on `npm rebuild`, and type-checks strictly', { timeout: 300_000 }, () => {
  // 1. npm pack: the library, its sources and the native sources; no tests, benchmarks or CI files
  const packed = JSON.parse(ok(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', root], repo), 'npm pack')) as
    [{ filename: string; files: { path: string }[] }];
  const files = packed[0].files.map((f) => f.path);
  for (const want of ['package.json', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/main.js', 'native/binding.gyp', 'native/build.cjs', 'native/src/tensor.cc']) {
    assert.ok(files.includes(want), `the tarball holds ${want}`);
  }
  const unwanted = files.filter((f) => /^(dist\/)?(test|bench)\/|^\.ci\/|^scripts\/|^native\/build\//.test(f));
  assert.deepEqual(unwanted, [], 'no tests, benchmarks, CI files or build outputs in the tarball');

  // 2. a fresh project installs it; libtorch is made unfindable, so the install script cannot build
  const consumer = path.join(root, 'consumer');
  mkdirSync(consumer);
  const { manifest, lock } = consumerLock(path.join(root, packed[0].filename), ['@types/node']);
  writeFileSync(path.join(consumer, 'package.json'), JSON.stringify(manifest, null, 2));
  writeFileSync(path.join(consumer, 'package-lock.json'), JSON.stringify(lock, null, 2));
  const noTorch = { LIBTORCH: path.join(root, 'no-libtorch'), AWTY_PREBUILT: '' };
  const install = run('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts'], consumer, noTorch);
  ok(install, 'npm ci of the tarball');
  assert.match(install.stdout + install.stderr, new RegExp(`libtorch not found[^]*npm rebuild ${pkg.name}`));
  const installed = path.join(consumer, 'node_modules', ...pkg.name.split('/'));
  assert.ok(!existsSync(path.join(installed, 'native', 'build', 'Release', 'awty_native.node')));

  // 3. the addon-free ground floor works; the engine names the command that builds it here
  const floor = `import { fitAccuracy, extrapolate } from '${pkg.name}/scaling';
    import { writeFileAtomic, DTYPES } from '${pkg.name}/io/core';
    const f = fitAccuracy('loglinear', [1, 10, 100], [20, 30, 40]);
    await writeFileAtomic('out.txt', async (fh) => { await fh.writeFile(String(extrapolate(f, 50).log10Hours)); });
    console.log(DTYPES.includes('float32'));`;
  assert.equal(ok(run(process.execPath, ['--input-type=module', '-e', floor], consumer), 'the addon-free sub-paths').trim(), 'true');
  assert.ok(Math.abs(Number(readFileSync(path.join(consumer, 'out.txt'), 'utf8')) - 3) < 1e-9);
  const engine = `import { torch } from '${pkg.name}'; console.log(torch.ones([2, 3]).sum().item());`;
  const missing = run(process.execPath, ['--input-type=module', '-e', engine], consumer);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, new RegExp(`native addon is not built[^]*npm rebuild ${pkg.name.replace('/', '\\/')}`));

  // 4. the hint's command builds (here: installs this checkout's build of) the addon; the engine runs
  ok(run('npm', ['rebuild', pkg.name, '--foreground-scripts'], consumer, { AWTY_PREBUILT: path.join(repo, 'native', 'build', 'Release') }), 'npm rebuild');
  assert.equal(ok(run(process.execPath, ['--input-type=module', '-e', engine], consumer), 'the engine after npm rebuild').trim(), '6');
  assert.match(ok(run(path.join(consumer, 'node_modules', '.bin', 'awty'), ['--help'], consumer), 'the awty command'), /figure1/);

  // 5. a strict program type-checks against the declarations (the package's and its dependencies')
  writeFileSync(path.join(consumer, 'main.ts'), PROGRAM);
  writeFileSync(path.join(consumer, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, exactOptionalPropertyTypes: true,
      skipLibCheck: false, noEmit: true, types: ['node'],
    },
    files: ['main.ts'],
  }));
  const tsc = run(process.execPath, [path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', consumer], consumer);
  assert.equal(tsc.status, 0, `the strict program type-checks:\n${tsc.stdout}${tsc.stderr}`);
  assert.ok(readdirSync(consumer).includes('main.ts'));
});
