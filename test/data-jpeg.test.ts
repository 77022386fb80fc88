// The compiled JPEG encoder of `awty extract` (native/src/jpeg.cc): sharp's `.jpeg({ quality })` bytes,
// byte for byte, on real frames and on the check image, at several sizes (odd ones: partial blocks
// and chroma pairs) and qualities; bad arguments are refused; the extraction uses it when it matches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { checkImage, nativeJpeg, nativeMatchesSharp, rgbJpegEncoder, sharpJpeg } from '../src/data/jpeg.js';

const built = nativeJpeg() !== null;
const why = built ? false : 'awty_jpeg.node is not built (libjpeg headers missing): the extraction encodes with sharp';

/** `n` frames of ffmpeg's testsrc2 (224 x 224) as raw RGB, cut to their top left width x height (testsrc2 makes even sizes only). */
function frames(width: number, height: number, n: number): Buffer[] {
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=224x224:rate=5', '-frames:v', String(n),
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { maxBuffer: 1 << 26 });
  return Array.from({ length: n }, (_, i) => {
    const out = Buffer.alloc(width * height * 3);
    for (let y = 0; y < height; y++) raw.copy(out, y * width * 3, (i * 224 * 224 + y * 224) * 3, (i * 224 * 224 + y * 224 + width) * 3);
    return out;
  });
}

test('the compiled encoder gives sharp\'s bytes: real frames and the check image, sizes and qualities', { skip: why }, async () => {
  const nat = nativeJpeg()!;
  for (const [w, h] of [[224, 224], [40, 40], [17, 9], [1, 1], [65, 33]] as const) {
    const imgs = [...frames(w, h, 2), checkImage(w, h)];
    for (const q of [1, 50, 75, 90, 95, 100]) {
      for (const [i, img] of imgs.entries()) {
        const [a, b] = await Promise.all([nat.jpegEncodeRgb(img, w, h, q), sharpJpeg(img, w, h, q)]);
        assert.ok(a.equals(b), `${w}x${h} quality ${q} image ${i}: ${a.length} bytes against sharp's ${b.length}`);
      }
    }
  }
});

test('the extraction uses the compiled encoder where it matches sharp; bad arguments are refused', { skip: why }, async () => {
  assert.equal(await nativeMatchesSharp(224, 224, 95), true);
  const enc = await rgbJpegEncoder(224, 224, 95);
  assert.equal(enc.name, 'libjpeg');
  const img = frames(224, 224, 1)[0]!;
  assert.ok((await enc.encode(img)).equals(await sharpJpeg(img, 224, 224, 95)));
  const nat = nativeJpeg()!;
  assert.throws(() => nat.jpegEncodeRgb(img.subarray(1), 224, 224, 95), /not width x height x 3 bytes/);
  assert.throws(() => nat.jpegEncodeRgb(img, 224, 224, 0), /quality must be 1\.\.100/);
  assert.throws(() => nat.jpegEncodeRgb(img, 0, 224, 95), /bad image size/);
  assert.throws(() => (nat.jpegEncodeRgb as (...a: unknown[]) => unknown)('x', 1, 1, 95), /jpegEncodeRgb\(rgb: Buffer/);
});

test('without the compiled encoder (or where it differs) sharp encodes', async () => {
  // the check image of a size no frame has: either encoder, the same bytes as sharp's
  const enc = await rgbJpegEncoder(31, 7, 88);
  const img = checkImage(31, 7);
  assert.ok((await enc.encode(img)).equals(await sharpJpeg(img, 31, 7, 88)));
  assert.equal(enc.name, built ? 'libjpeg' : 'sharp');
});
