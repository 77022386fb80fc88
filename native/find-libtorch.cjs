// Locates libtorch for the addon build and prints one gyp list (include dirs, lib dirs or libs).
// Order: $LIBTORCH (an official libtorch archive: include/ + lib/, or a Python torch package folder,
// whose include/ and lib/ may sit in torch/), else the system's (Debian's libtorch-dev).
'use strict';
const fs = require('fs');
const path = require('path');

function candidates() {
  const out = [];
  const env = process.env.LIBTORCH;
  if (env) {
    for (const root of [env, path.join(env, 'torch')]) {
      out.push({
        root,
        include: [path.join(root, 'include'), path.join(root, 'include', 'torch', 'csrc', 'api', 'include')],
        lib: path.join(root, 'lib'),
      });
    }
    return out;
  }
  for (const libdir of ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib']) {
    const prefix = path.dirname(libdir.replace(/\/(x86_64|aarch64)-linux-gnu$/, ''));
    const inc = path.join(prefix === '/' ? '/usr' : prefix, 'include');
    out.push({ root: prefix, include: ['/usr/include', '/usr/include/torch/csrc/api/include', inc, path.join(inc, 'torch', 'csrc', 'api', 'include')], lib: libdir });
  }
  return out;
}

function find() {
  for (const c of candidates()) {
    const hasHeader = c.include.some((d) => fs.existsSync(path.join(d, 'torch', 'torch.h')));
    const hasLib = fs.existsSync(path.join(c.lib, 'libtorch.so')) || fs.existsSync(path.join(c.lib, 'libtorch_cpu.so'));
    if (hasHeader && hasLib) {
      const libs = ['-ltorch', '-ltorch_cpu', '-lc10'];
      if (fs.existsSync(path.join(c.lib, 'libtorch_cuda.so'))) libs.push('-ltorch_cuda', '-lc10_cuda');
      // System include folders stay implicit: passing them with -I breaks libstdc++'s #include_next.
      const system = new Set(['/usr/include', '/usr/local/include']);
      return { include: [...new Set(c.include.filter((d) => fs.existsSync(d) && !system.has(d)))], lib: c.lib, libs, cuda: libs.includes('-ltorch_cuda') };
    }
  }
  return null;
}

module.exports = { find };

if (require.main === module) {
  const found = find();
  const what = process.argv[2];
  if (!found) {
    process.stderr.write(
      'awty: libtorch not found. Install Debian\'s libtorch-dev (apt-get install libtorch-dev libgloo-dev), ' +
        'or set LIBTORCH to an unpacked libtorch archive (include/ + lib/) or a Python torch package folder.\n',
    );
    process.exit(1);
  }
  if (what === 'include') console.log(found.include.join(' '));
  else if (what === 'libdir') console.log(found.lib);
  else if (what === 'libs') console.log(found.libs.join(' '));
  else if (what === 'cuda') console.log(found.cuda ? '1' : '0');
  else console.log(JSON.stringify(found));
}
