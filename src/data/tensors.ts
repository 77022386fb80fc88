// Batches as libtorch tensors (one copy each). Kept out of data/index.ts so that the rest of the data
// layer loads without the native addon.
import * as torch from '../torch/index.js';
import type { Batch } from './loader.js';

/**
 * images: float32 [N,3,H,W] (normalised), or uint8 [N,H,W,3] raw pixels as they are (not normalised); labels:
 * the batch's dtype. With `releaseTo` (the loader), the batch's array is handed back once copied, so
 * the loader refills it instead of touching fresh memory (see DataLoader.release).
 */
export function toTensors(batch: Batch, options: { releaseTo?: { release(batch: Batch): void } } = {}): { images: torch.Tensor; labels: torch.Tensor } {
  const out = {
    images: torch.fromTypedArray(batch.data, batch.shape),
    labels: torch.fromTypedArray(batch.labels, [batch.labels.length]),
  };
  options.releaseTo?.release(batch);
  return out;
}
