// Prints 1 when libjpeg's header is found in the usual include folders (or $CPATH / $C_INCLUDE_PATH),
// else 0: binding.gyp builds awty_jpeg.node only then (without it, `awty extract` encodes with sharp).
'use strict';
const fs = require('fs');
const path = require('path');
const dirs = [...(process.env.CPATH ?? '').split(':'), ...(process.env.C_INCLUDE_PATH ?? '').split(':'),
  '/usr/include', '/usr/local/include', '/opt/homebrew/include', '/opt/local/include'].filter(Boolean);
process.stdout.write(dirs.some((d) => fs.existsSync(path.join(d, 'jpeglib.h'))) ? '1' : '0');
