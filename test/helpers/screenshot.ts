// node dist/test/helpers/screenshot.js REPORT.html OUT.png: a full-page screenshot of a report in
// headless Chromium (for the docs), with what rendered printed as JSON.
import { inspectPage } from './chromium.js';

const [file, png] = process.argv.slice(2);
if (!file || !png) {
  process.stderr.write('usage: node dist/test/helpers/screenshot.js REPORT.html OUT.png\n');
  process.exit(2);
}
const r = await inspectPage(file, { screenshot: png });
process.stdout.write(`${JSON.stringify({ title: r.title, images: r.images, rows: Object.fromEntries(Object.entries(r.tables).map(([k, v]) => [k, v.length])) }, null, 2)}\n`);
