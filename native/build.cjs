// Builds the native addon with node-gyp unless an up-to-date build exists (pass --force to rebuild).
// Runs as the package's own install script (with --if-possible: a failed build prints how to retry
// and leaves the addon-free parts of the package usable) and from scripts/setup.sh.
// AWTY_PREBUILT=<folder holding awty_native.node and awty_image.node> installs that build instead
// of compiling (a build made earlier against the same libtorch, e.g. cached by CI).
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { find } = require('./find-libtorch.cjs');

const here = __dirname;
const targets = ['awty_native.node', 'awty_image.node'].map((f) => path.join(here, 'build', 'Release', f));
const force = process.argv.includes('--force');
const ifPossible = process.argv.includes('--if-possible');
const pkgName = JSON.parse(fs.readFileSync(path.join(here, '..', 'package.json'), 'utf8')).name;

/** Ends the script: a failed install-time build only warns, with the command that retries it. */
function fail(message) {
  console.error(message);
  if (!ifPossible) process.exit(1);
  console.error(`awty: the native addon was not built; the addon-free parts (${pkgName}/scaling, ${pkgName}/io/core) work without it. ` +
    `Once libtorch is installed, build it with \`npm rebuild ${pkgName}\`.`);
  process.exit(0);
}

const prebuilt = process.env.AWTY_PREBUILT;
if (prebuilt) {
  const files = targets.map((t) => path.join(prebuilt, path.basename(t)));
  const missing = files.filter((f) => !fs.existsSync(f));
  if (missing.length) fail(`awty: AWTY_PREBUILT=${prebuilt} lacks ${missing.map((f) => path.basename(f)).join(', ')}`);
  fs.mkdirSync(path.dirname(targets[0]), { recursive: true });
  // awty_jpeg.node (built only where libjpeg's headers are) is copied when the prebuilt folder has it
  const jpeg = path.join(here, 'build', 'Release', 'awty_jpeg.node');
  const all = [...targets.map((t, i) => [files[i], t]), ...(fs.existsSync(path.join(prebuilt, 'awty_jpeg.node')) ? [[path.join(prebuilt, 'awty_jpeg.node'), jpeg]] : [])];
  for (const [from, to] of all) {
    const tmp = `${to}.${process.pid}.tmp`;
    fs.copyFileSync(from, tmp);
    fs.renameSync(tmp, to);
  }
  console.log(`awty: installed the prebuilt native addon from ${prebuilt}`);
  process.exit(0);
}

function newestSource() {
  let t = 0;
  const visit = (p) => {
    const st = fs.statSync(p);
    if (st.isDirectory()) for (const f of fs.readdirSync(p)) visit(path.join(p, f));
    else t = Math.max(t, st.mtimeMs);
  };
  visit(path.join(here, 'src'));
  for (const f of ['binding.gyp', 'find-libtorch.cjs', 'find-jpeg.cjs', 'build.cjs']) visit(path.join(here, f));
  return t;
}

if (!force && targets.every((t) => fs.existsSync(t) && fs.statSync(t).mtimeMs >= newestSource())) {
  process.exit(0);
}
if (!find()) {
  fail(
    "awty: libtorch not found. Install Debian's libtorch-dev (apt-get install libtorch-dev libgloo-dev), " +
      'or set LIBTORCH to an unpacked libtorch archive (include/ + lib/) or a Python torch package folder.',
  );
}

function nodeGyp() {
  if (process.env.npm_config_node_gyp && fs.existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const bundled = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (fs.existsSync(bundled)) return bundled;
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    fail('awty: node-gyp not found (it comes with npm); reinstall npm or `npm install -g node-gyp`.');
  }
}

console.log('awty: building the native addon (libtorch); this takes a few minutes');
const jobs = String(Math.max(1, require('os').availableParallelism?.() ?? require('os').cpus().length));
const args = [nodeGyp(), 'rebuild', '-j', jobs];
// Build against the headers of the running Node when they are installed (no download needed).
const prefix = path.dirname(path.dirname(process.execPath));
const nodedir = process.env.npm_config_nodedir || (fs.existsSync(path.join(prefix, 'include', 'node', 'common.gypi')) ? prefix : '');
if (nodedir) args.push(`--nodedir=${nodedir}`);
const r = spawnSync(process.execPath, args, { cwd: here, stdio: 'inherit' });
if (r.status !== 0) fail(`awty: the native build failed (node-gyp exited with ${r.status ?? r.signal})`);
