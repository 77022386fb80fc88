// Builds the native addon with node-gyp unless an up-to-date build exists (pass --force to rebuild).
// Runs as the package's own install script and from scripts/setup.sh.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { find } = require('./find-libtorch.cjs');

const here = __dirname;
const targets = ['awty_native.node', 'awty_image.node'].map((f) => path.join(here, 'build', 'Release', f));
const force = process.argv.includes('--force');

function newestSource() {
  let t = 0;
  const visit = (p) => {
    const st = fs.statSync(p);
    if (st.isDirectory()) for (const f of fs.readdirSync(p)) visit(path.join(p, f));
    else t = Math.max(t, st.mtimeMs);
  };
  visit(path.join(here, 'src'));
  for (const f of ['binding.gyp', 'find-libtorch.cjs', 'build.cjs']) visit(path.join(here, f));
  return t;
}

if (!force && targets.every((t) => fs.existsSync(t) && fs.statSync(t).mtimeMs >= newestSource())) {
  process.exit(0);
}
if (!find()) {
  console.error(
    "awty: libtorch not found. Install Debian's libtorch-dev (apt-get install libtorch-dev libgloo-dev), " +
      'or set LIBTORCH to an unpacked libtorch archive (include/ + lib/) or a Python torch package folder.',
  );
  process.exit(1);
}

function nodeGyp() {
  if (process.env.npm_config_node_gyp && fs.existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const bundled = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (fs.existsSync(bundled)) return bundled;
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    console.error('awty: node-gyp not found (it comes with npm); reinstall npm or `npm install -g node-gyp`.');
    process.exit(1);
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
process.exit(r.status ?? 1);
