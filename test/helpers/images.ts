// Small labelled test images: a colour per class under seeded noise (the same bytes for the same
// colour and seed), written as JPEG or PNG by sharp.
import { writeFile } from 'node:fs/promises';
import sharp from 'sharp';

export interface NoisyImageOptions {
  /** the noise is uniform in [-spread, spread] per channel (default 20) */
  spread?: number;
  /** add a horizontal ramp of 0..31 (default off) */
  ramp?: boolean;
  format?: 'jpeg' | 'png';
}

/** 32x32 RGB pixels: `rgb` plus seeded noise, clamped to 0..255. */
export function noisyPixels(rgb: readonly number[], seed: number, o: NoisyImageOptions = {}): Buffer {
  const spread = o.spread ?? 20;
  const px = Buffer.alloc(32 * 32 * 3);
  let s = (seed * 2654435761) >>> 0;
  for (let i = 0; i < px.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    px[i] = Math.max(0, Math.min(255, rgb[i % 3]! + ((s >>> 24) % (2 * spread + 1)) - spread + (o.ramp ? (i / 3) % 32 : 0)));
  }
  return px;
}

/** Writes noisyPixels(rgb, seed) to `file` as JPEG (quality 90, default) or PNG. */
export async function writeNoisyImage(file: string, rgb: readonly number[], seed: number, o: NoisyImageOptions = {}): Promise<void> {
  const img = sharp(noisyPixels(rgb, seed, o), { raw: { width: 32, height: 32, channels: 3 } });
  await writeFile(file, await (o.format === 'png' ? img.png() : img.jpeg({ quality: 90 })).toBuffer());
}
