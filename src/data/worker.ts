// A loader worker thread: runs batch tasks and sends the arrays back without copying.
import { parentPort } from 'node:worker_threads';
import sharp from 'sharp';
import { runBatch, type BatchTask } from './batch.js';

sharp.concurrency(1);
sharp.cache(false);

parentPort!.on('message', (task: BatchTask) => {
  runBatch(task).then(
    (r) => parentPort!.postMessage({ ok: true, result: r }, [r.data.buffer as ArrayBuffer, r.labels.buffer as ArrayBuffer, r.indices.buffer as ArrayBuffer]),
    (e: unknown) => parentPort!.postMessage({ ok: false, id: task.id, error: e instanceof Error ? e.message : String(e) }),
  );
});
