// One batch's work, the same in a worker thread or in the main thread: read each sample's bytes,
// decode and transform it, and write it into one contiguous array.
import { promises as fsp, readFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { Rng } from './rng.js';
import { decodeRgb, planOps, type RgbImage, type TransformSpec } from './transforms.js';
import { executor } from './native-image.js';
import { meanStd, type Plan } from './program.js';

// In a worker thread, whole files are read synchronously: a frame from the page cache takes tens of
// microseconds, and four thread-pool round trips (open, stat, read, close) per image cost more;
// decodes of the other images still overlap. The main thread (workers = 0) never blocks.
const SYNC_READS = !isMainThread;

export interface BatchItem { index: number; label: number; path: string; offset?: number; length?: number }

export interface BatchTask {
  id: number;
  epoch: number;
  seed: number;
  spec: TransformSpec;
  output: 'float32' | 'uint8';
  onBadImage: 'fail' | 'skip';
  items: BatchItem[];
  /** samples decoded at once */
  concurrency: number;
  /** an array of a released batch: the batch is written into it when it has the right size */
  reuse?: ArrayBuffer;
}

export interface BatchResult {
  id: number;
  data: Float32Array | Uint8Array;
  /** [N, 3, H, W] for float32, [N, H, W, 3] for uint8 */
  shape: [number, number, number, number];
  labels: Int32Array;
  indices: Int32Array;
  skipped: { path: string; reason: string }[];
}

async function readBytes(it: BatchItem): Promise<Uint8Array> {
  if (it.offset === undefined) return SYNC_READS ? readFileSync(it.path) : fsp.readFile(it.path);
  const fh = await fsp.open(it.path, 'r');
  try {
    const buf = Buffer.allocUnsafe(it.length ?? 0);
    const { bytesRead } = await fh.read(buf, 0, buf.length, it.offset);
    if (bytesRead !== buf.length) throw new Error(`short read (${bytesRead} of ${buf.length} bytes at ${it.offset})`);
    return buf;
  } finally {
    await fh.close();
  }
}

export async function runBatch(task: BatchTask): Promise<BatchResult> {
  const n = task.items.length;
  // the compiled kernels when built, else the TypeScript ones (the same bytes): one call per
  // sample runs its program and writes the result into the batch
  const exec = executor();
  const norm = task.output === 'float32' ? meanStd(task.spec) : null;
  let h = 0, w = 0;
  let data: Float32Array | Uint8Array | null = null;
  const ok = new Uint8Array(n);
  const skipped: { path: string; reason: string }[] = [];
  let next = 0;
  const one = async (k: number): Promise<void> => {
    const it = task.items[k]!;
    const where = it.offset === undefined ? it.path : `${it.path} (member at byte ${it.offset})`;
    let img: RgbImage, plan: Plan;
    try {
      const bytes = await readBytes(it);
      if (!bytes.length) throw new Error('empty file');
      img = await decodeRgb(bytes);
      // the parameters now, the pixels below, straight into the batch
      plan = planOps(img.width, img.height, task.spec, new Rng(task.seed, task.epoch, it.index));
    } catch (e) {
      const reason = (e as Error).message;
      if (task.onBadImage === 'skip') {
        skipped.push({ path: where, reason });
        return;
      }
      throw new Error(`cannot load image ${where}: ${reason} (rerun with --on-bad-image skip to leave unreadable images out)`);
    }
    const outW = plan.width, outH = plan.height;
    if (!data) {
      h = outH; w = outW;
      const len = n * 3 * h * w;
      const reuse = task.reuse && task.reuse.byteLength === len * (task.output === 'float32' ? 4 : 1) ? task.reuse : null;
      // every sample kept is written whole, and skipped ones are cut off below: no stale values
      if (task.output === 'float32') data = reuse ? new Float32Array(reuse) : new Float32Array(len);
      else data = reuse ? new Uint8Array(reuse) : new Uint8Array(len);
    } else if (outH !== h || outW !== w) {
      throw new Error(`image ${where} is ${outW}x${outH} after the transforms, others are ${w}x${h}: cannot batch (add a resize/crop)`);
    }
    exec.run(img.data, img.width, img.height, plan.program, data, k * 3 * h * w, norm);
    ok[k] = 1;
  };
  const lanes = Array.from({ length: Math.max(1, Math.min(task.concurrency, n)) }, async () => {
    while (next < n) await one(next++);
  });
  await Promise.all(lanes);
  let kept = 0;
  for (let k = 0; k < n; k++) kept += ok[k]!;
  const per = 3 * h * w;
  let out: Float32Array | Uint8Array = data ?? new Float32Array(0);
  const labels = new Int32Array(kept), indices = new Int32Array(kept);
  let j = 0;
  for (let k = 0; k < n; k++) {
    if (!ok[k]) continue;
    if (j !== k) out.copyWithin(j * per, k * per, (k + 1) * per);
    labels[j] = task.items[k]!.label;
    indices[j] = task.items[k]!.index;
    j++;
  }
  if (kept < n) out = out.slice(0, kept * per);
  skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const shape: [number, number, number, number] = task.output === 'float32' ? [kept, 3, h, w] : [kept, h, w, 3];
  return { id: task.id, data: out, shape, labels, indices, skipped };
}
