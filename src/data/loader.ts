// The parallel loader: batches of decoded, transformed images as contiguous typed arrays, from
// worker threads (or the main thread with workers = 0), in sampler order, with bounded prefetch.
// Each sample's random stream is fixed by (seed, epoch, sample index), so batch bytes do not depend
// on the number of workers.
import { Worker } from 'node:worker_threads';
import * as os from 'node:os';
import type { Dataset } from './datasets.js';
import { runBatch, type BatchItem, type BatchResult, type BatchTask } from './batch.js';
import { RandomSampler, SequentialSampler, type Sampler } from './samplers.js';
import type { TransformSpec } from './transforms.js';

export interface Batch {
  /** float32 normalised NCHW, or uint8 NHWC raw pixels (not normalised: the caller converts them) */
  data: Float32Array | Uint8Array;
  shape: [number, number, number, number];
  layout: 'NCHW' | 'NHWC';
  labels: Int32Array | BigInt64Array;
  /** dataset indices of the samples, in batch order */
  indices: Int32Array;
}

export interface LoaderOptions {
  batchSize: number;
  transform: TransformSpec;
  /** worker threads; 0 decodes in the main thread (default: cores - 1, at least 1) */
  workers?: number;
  /** batches in flight per worker (default 2): memory is bounded by workers x prefetch batches */
  prefetch?: number;
  shuffle?: boolean;
  seed?: number;
  dropLast?: boolean;
  sampler?: Sampler;
  output?: 'float32' | 'uint8';
  /** the labels' dtype (default int64, what cross-entropy takes as class indices, as PyTorch's loader gives) */
  labels?: 'int32' | 'int64';
  onBadImage?: 'fail' | 'skip';
  /** images decoded at once inside one worker (default 4) */
  concurrency?: number;
  onLog?: (line: string) => void;
}

interface Pending { resolve: (r: BatchResult) => void; reject: (e: Error) => void }

export class DataLoader {
  readonly sampler: Sampler;
  private readonly workers: Worker[] = [];
  private readonly load: number[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private epochCounter = 0;
  private closed = false;
  /** arrays of released batches, handed to the next tasks of the same size to be filled again */
  private readonly pool: ArrayBuffer[] = [];
  /** bytes per sample of the batches seen (0 until the first batch) */
  private sampleBytes = 0;
  /** images skipped (--on-bad-image skip) in the last finished or current epoch */
  skipped: { path: string; reason: string }[] = [];

  constructor(readonly dataset: Dataset, readonly opts: LoaderOptions) {
    if (!(opts.batchSize >= 1)) throw new Error(`batch size must be at least 1, got ${opts.batchSize}`);
    this.sampler = opts.sampler ?? (opts.shuffle ? new RandomSampler(dataset.length, opts.seed ?? 0) : new SequentialSampler(dataset.length));
    const nw = opts.workers ?? Math.max(1, os.availableParallelism() - 1);
    for (let i = 0; i < nw; i++) {
      const w = new Worker(new URL('./worker.js', import.meta.url));
      w.on('message', (m: { ok: true; result: BatchResult } | { ok: false; id: number; error: string }) => {
        const id = m.ok ? m.result.id : m.id;
        const p = this.pending.get(id);
        this.pending.delete(id);
        if (--this.load[i]! === 0) w.unref();
        if (!p) return;
        if (m.ok) p.resolve(m.result);
        else p.reject(new Error(m.error));
      });
      w.on('error', (e) => { for (const p of this.pending.values()) p.reject(e); this.pending.clear(); });
      w.unref();
      this.workers.push(w);
      this.load.push(0);
    }
  }

  /** Number of batches in an epoch (for a sampler whose length does not change between epochs). */
  batchesPerEpoch(epoch = 0): number {
    const n = this.sampler.indices(epoch).length;
    return this.opts.dropLast ? Math.floor(n / this.opts.batchSize) : Math.ceil(n / this.opts.batchSize);
  }

  private run(task: BatchTask): Promise<BatchResult> {
    if (!this.workers.length) return runBatch(task);
    let best = 0;
    for (let i = 1; i < this.load.length; i++) if (this.load[i]! < this.load[best]!) best = i;
    if (this.load[best]!++ === 0) this.workers[best]!.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(task.id, { resolve, reject });
      this.workers[best]!.postMessage(task, task.reuse ? [task.reuse] : []);
    });
  }

  /**
   * The batches of one epoch (the epoch number seeds shuffling and augmentation). `startBatch`
   * skips the epoch's first batches (a resumed epoch gets exactly the batches it had left).
   */
  async *epoch(epoch: number, opts: { startBatch?: number } = {}): AsyncGenerator<Batch> {
    if (this.closed) throw new Error('the loader is closed');
    this.epochCounter = epoch + 1;
    const o = this.opts;
    const order = this.sampler.indices(epoch);
    const bs = o.batchSize;
    const nb = o.dropLast ? Math.floor(order.length / bs) : Math.ceil(order.length / bs);
    const depth = Math.max(1, (o.prefetch ?? 2) * Math.max(1, this.workers.length));
    const inflight: Promise<BatchResult>[] = [];
    this.skipped = [];
    const seed = o.seed ?? 0;
    const submit = (b: number): void => {
      const items: BatchItem[] = [];
      for (let k = b * bs; k < Math.min(order.length, (b + 1) * bs); k++) {
        const index = order[k]!;
        const src = this.dataset.source(index);
        items.push({ index, label: this.dataset.label(index), path: src.path, offset: src.offset, length: src.length });
      }
      const p = this.run({ id: this.nextId++, epoch, seed, spec: o.transform, output: o.output ?? 'float32', onBadImage: o.onBadImage ?? 'fail', items,
        concurrency: o.concurrency ?? 4, reuse: this.takeBuffer(items.length * this.sampleBytes) });
      p.catch(() => undefined); // handled when awaited
      inflight.push(p);
    };
    const first = Math.max(0, Math.min(nb, opts.startBatch ?? 0));
    let submitted = first;
    try {
      for (let b = first; b < nb; b++) {
        while (submitted < nb && inflight.length < depth) submit(submitted++);
        const r = await inflight.shift()!;
        if (r.shape[0] > 0) this.sampleBytes = r.data.byteLength / r.shape[0];
        this.skipped.push(...r.skipped);
        if (r.shape[0] === 0) continue; // every image of this batch was skipped (--on-bad-image skip)
        const labels = (o.labels ?? 'int64') === 'int64' ? BigInt64Array.from(r.labels, (v) => BigInt(v)) : r.labels;
        yield { data: r.data, shape: r.shape, layout: (o.output ?? 'float32') === 'float32' ? 'NCHW' : 'NHWC', labels, indices: r.indices };
      }
    } finally {
      await Promise.allSettled(inflight);
      if (this.skipped.length) {
        (o.onLog ?? ((l: string) => process.stderr.write(`${l}\n`)))(`epoch ${epoch}: skipped ${this.skipped.length} unreadable image(s):\n` +
          this.skipped.map((s) => `  ${s.path}: ${s.reason}`).join('\n'));
      }
    }
  }

  /**
   * Hands a batch's data array back to the loader once it has been consumed (e.g. copied into
   * tensors by `toTensors`): a later batch of the same size is written into it instead of into
   * fresh memory, which saves the page faults of a new array (about 2 ms per image on the
   * virtual machine of docs/data.md). The batch's `data` must not be used afterwards. Optional.
   */
  release(batch: Batch): void {
    const buf = batch.data.buffer;
    if (!(buf instanceof ArrayBuffer) || batch.data.byteOffset !== 0 || batch.data.byteLength !== buf.byteLength || buf.byteLength === 0) return;
    if (this.pool.includes(buf)) return;
    this.pool.push(buf);
    // keep the newest few (enough for the batches in flight)
    if (this.pool.length > Math.max(2, this.workers.length * (this.opts.prefetch ?? 2) + 1)) this.pool.shift();
  }

  private takeBuffer(bytes: number): ArrayBuffer | undefined {
    const i = this.pool.findIndex((b) => b.byteLength === bytes);
    return i < 0 ? undefined : this.pool.splice(i, 1)[0];
  }

  /** Iterates the next epoch (0, 1, ... on successive loops). */
  [Symbol.asyncIterator](): AsyncGenerator<Batch> {
    return this.epoch(this.epochCounter);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
