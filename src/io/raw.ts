// Engine-free whole-file loading: open a checkpoint (torch.save zip, legacy, or safetensors) and
// read every storage into `storage.data`.

import { open } from 'node:fs/promises';
import { CheckpointError } from './errors.js';
import { SafetensorsReader } from './safetensors.js';
import { TorchCheckpointReader, type CheckpointReader, type ReadOptions } from './torch-read.js';

/**
 * Open any supported checkpoint: safetensors by content (or .safetensors name), else torch.save.
 * `options` say which Python globals a torch.save pickle may name (default: the allow-list only).
 */
export async function openCheckpoint(path: string, options: ReadOptions = {}): Promise<CheckpointReader> {
  if (path.endsWith('.safetensors')) return SafetensorsReader.open(path);
  let first = -1;
  try {
    const fh = await open(path, 'r');
    try {
      const b = new Uint8Array(9);
      const { bytesRead } = await fh.read(b, 0, 9, 0);
      // safetensors: u64 header length, then '{'
      if (bytesRead === 9 && b[8] === 0x7b) first = 0x7b;
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw new CheckpointError(path, `cannot open: ${(e as Error).message}`, { cause: e });
  }
  if (first === 0x7b) return SafetensorsReader.open(path);
  return TorchCheckpointReader.open(path, options);
}

/** Load a checkpoint with every storage's bytes in `storage.data` (tensors stay RawTensor records). */
export async function loadRaw(path: string, options: ReadOptions = {}): Promise<unknown> {
  const r = await openCheckpoint(path, options);
  try {
    for (const s of r.storages.values()) s.data = await r.readStorage(s);
    return r.root;
  } finally {
    await r.close();
  }
}
