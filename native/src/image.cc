// The per-pixel image operations of src/data/transforms.ts (PIL's arithmetic on 8-bit interleaved
// RGB) as plain C++ loops, byte for byte the same results: the antialiased bilinear resample of a
// crop (22-bit fixed point), the blends of brightness, contrast and saturation, hue through PIL's
// 8-bit HSV, grayscale, the Gaussian blur's box passes, horizontal flip, and ToTensor + Normalize
// into float32 CHW. Every float32 step of the TypeScript (Math.fround of a double expression) is
// written as a double expression cast to float, so that the roundings are the same.
//
// One call, `imageApply`, runs a whole sample's chain of ops (a program of numbers planned in
// TypeScript, where the random parameters are drawn) and writes the result into the batch array at
// the sample's offset; intermediate images live in per-thread scratch buffers. No libtorch here:
// the file is built alone as `awty_image.node`, a module without libtorch and without process-wide
// state, which the loader's worker threads load.
#pragma GCC optimize("O3", "fp-contract=off")
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace awty {

void InitImage(Napi::Env env, Napi::Object exports);

namespace {

// The op codes of a program and their argument counts: src/data/program.ts KERNELS, exported as
// `imageOps()` so that a test compares the two tables. A code missing here is an unknown op.
enum OpCode : int {
  kResize = 1,
  kCrop = 2,
  kBrightness = 3,
  kContrast = 4,
  kSaturation = 5,
  kHue = 6,
  kGrayscale = 7,
  kBlur = 8,
  kFlip = 9,
  kResizeBicubic = 10,
};

struct OpInfo {
  const char* name;
  int code;
  int arity;
};

constexpr OpInfo kOps[] = {
    {"resize", kResize, 6},          // top, left, boxHeight, boxWidth, outWidth, outHeight
    {"crop", kCrop, 4},              // top, left, height, width
    {"brightness", kBrightness, 1},  // factor
    {"contrast", kContrast, 1},      // factor
    {"saturation", kSaturation, 1},  // factor
    {"hue", kHue, 1},                // hue factor
    {"grayscale", kGrayscale, 0},
    {"blur", kBlur, 1},  // sigma
    {"flip", kFlip, 0},
    {"resizeBicubic", kResizeBicubic, 6},  // as resize, PIL's bicubic filter
};

const OpInfo* FindOp(int code) {
  for (const OpInfo& o : kOps) {
    if (o.code == code) return &o;
  }
  return nullptr;
}

using u8 = uint8_t;

// The loops are compiled twice, for the x86-64 baseline and for AVX2 (chosen at load time); the
// arithmetic is integer or explicitly rounded float, so both give the same bytes.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(AWTY_IMAGE_NO_CLONES)
#define AWTY_VEC __attribute__((target_clones("avx2", "default")))
#else
#define AWTY_VEC
#endif

// Scratch images of this thread, reused from sample to sample.
// [0]: the resample's intermediate rows, [2]: the blur's ping-pong image
thread_local std::vector<u8> tScratch[3];
thread_local std::vector<int32_t> tInts[3];

inline int Clip8(int x) { return x <= 0 ? 0 : x >= 255 ? 255 : x; }

// Image.blend(im1, im2, alpha) for one value, as transforms.ts: f32(a + f32(alpha * (b - a))),
// truncated and clipped.
inline u8 Blend(int a, int b, float alpha) {
  const float p = static_cast<float>(static_cast<double>(alpha) * static_cast<double>(b - a));
  const float t = static_cast<float>(static_cast<double>(a) + static_cast<double>(p));
  if (t <= 0) return 0;
  if (t >= 255) return 255;
  return static_cast<u8>(static_cast<int>(t));
}

inline uint32_t Luma(uint32_t r, uint32_t g, uint32_t b) { return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16; }

AWTY_VEC void ApplyTable(u8* px, size_t n, const u8* lut) {
  for (size_t i = 0; i < n; i++) px[i] = lut[px[i]];
}

void BlendTable(int base, float alpha, u8* lut) {
  for (int v = 0; v < 256; v++) lut[v] = Blend(base, v, alpha);
}

void Brightness(u8* px, size_t n, double factor) {
  u8 lut[256];
  BlendTable(0, static_cast<float>(factor), lut);
  ApplyTable(px, n, lut);
}

AWTY_VEC void Contrast(u8* px, size_t n, double factor) {
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i += 3) sum += Luma(px[i], px[i + 1], px[i + 2]);
  const double npix = static_cast<double>(n / 3);
  const int mean = static_cast<int>(std::trunc(static_cast<double>(sum) / npix + 0.5));
  u8 lut[256];
  BlendTable(mean, static_cast<float>(factor), lut);
  ApplyTable(px, n, lut);
}

AWTY_VEC void Saturation(u8* px, size_t n, double factor) {
  const float a = static_cast<float>(factor);
  if (!(std::fabs(a) >= 1.0f / 65536)) {
    // tiny factors: the double steps of the TypeScript as written
    for (size_t i = 0; i < n; i += 3) {
      const int l = static_cast<int>(Luma(px[i], px[i + 1], px[i + 2]));
      for (int c = 0; c < 3; c++) px[i + c] = Blend(l, px[i + c], a);
    }
    return;
  }
  // |a| >= 2^-16: a * (v - l) (33 significant bits) and l + p (at most 48) are exact in double,
  // so the TypeScript's double steps rounded to float32 equal these single float32 operations
  for (size_t i = 0; i < n; i += 3) {
    const int l = static_cast<int>(Luma(px[i], px[i + 1], px[i + 2]));
    const float lf = static_cast<float>(l);
    for (int c = 0; c < 3; c++) {
      const float t = lf + a * static_cast<float>(px[i + c] - l);
      px[i + c] = t <= 0 ? 0 : t >= 255 ? 255 : static_cast<u8>(static_cast<int>(t));
    }
  }
}

AWTY_VEC void Grayscale(u8* px, size_t n) {
  for (size_t i = 0; i < n; i += 3) {
    const u8 l = static_cast<u8>(Luma(px[i], px[i + 1], px[i + 2]));
    px[i] = l;
    px[i + 1] = l;
    px[i + 2] = l;
  }
}

void Flip(u8* px, int width, int height) {
  for (int y = 0; y < height; y++) {
    u8* a = px + static_cast<size_t>(y) * width * 3;
    u8* b = a + static_cast<size_t>(width - 1) * 3;
    while (a < b) {
      for (int c = 0; c < 3; c++) std::swap(a[c], b[c]);
      a += 3;
      b -= 3;
    }
  }
}

// ---- hue: tables of PIL's 8-bit HSV, built once per process ----

struct HueTables {
  std::vector<u8> hue, sat, sector, p;
  std::vector<float> fs, frac;
};

void PilHueSat(int r, int g, int b, int* hOut) {
  const int maxc = std::max(r, std::max(g, b)), minc = std::min(r, std::min(g, b));
  if (minc == maxc) {
    *hOut = 0;
    return;
  }
  const float cr = static_cast<float>(maxc - minc);
  const double crd = cr;
  const float rc = static_cast<float>((maxc - r) / crd), gc = static_cast<float>((maxc - g) / crd),
              bc = static_cast<float>((maxc - b) / crd);
  float h;
  if (r == maxc) h = static_cast<float>(static_cast<double>(bc) - gc);
  else if (g == maxc) h = static_cast<float>(static_cast<double>(static_cast<float>(2.0 + rc)) - bc);
  else h = static_cast<float>(static_cast<double>(static_cast<float>(4.0 + gc)) - rc);
  h = static_cast<float>(std::fmod(static_cast<double>(h) / 6 + 1, 1.0));
  *hOut = Clip8(static_cast<int>(std::trunc(static_cast<double>(h) * 255)));
}

const HueTables& GetHueTables() {
  static HueTables t;
  static std::once_flag once;
  std::call_once(once, [] {
    t.hue.assign(511 * 511, 0);
    for (int d1 = -255; d1 <= 255; d1++) {
      for (int d2 = -255; d2 <= 255; d2++) {
        const int b = std::max(0, std::max(-d2, -(d1 + d2))), g = b + d2, r = g + d1;
        if (r > 255 || g > 255 || b > 255) continue;
        int h;
        PilHueSat(r, g, b, &h);
        t.hue[(d1 + 255) * 511 + d2 + 255] = static_cast<u8>(h);
      }
    }
    t.sat.assign(256 * 256, 0);
    for (int maxc = 1; maxc < 256; maxc++) {
      for (int cr = 1; cr <= maxc; cr++) {
        const float s = static_cast<float>(static_cast<double>(static_cast<float>(cr)) / maxc);
        t.sat[cr * 256 + maxc] = static_cast<u8>(Clip8(static_cast<int>(std::trunc(static_cast<double>(s) * 255))));
      }
    }
    t.sector.assign(256, 0);
    t.frac.assign(256, 0);
    for (int h = 0; h < 256; h++) {
      const float hf = static_cast<float>(static_cast<double>(static_cast<float>(h * 6)) / 255);
      const double ii = std::floor(static_cast<double>(hf));
      t.sector[h] = static_cast<u8>(static_cast<int>(ii) % 6);
      t.frac[h] = static_cast<float>(static_cast<double>(hf) - ii);
    }
    t.p.assign(256 * 256, 0);
    t.fs.assign(256, 0);
    for (int s = 0; s < 256; s++) {
      const float fs = static_cast<float>(s / 255.0);
      t.fs[s] = fs;
      const float oneMinus = static_cast<float>(1.0 - fs);
      for (int v = 0; v < 256; v++) {
        const float x = static_cast<float>(static_cast<double>(v) * oneMinus);
        t.p[v * 256 + s] = static_cast<u8>(Clip8(static_cast<int>(std::floor(static_cast<double>(x) + 0.5))));
      }
    }
  });
  return t;
}

// Math.round of a value >= 0 (x + 0.5 is exact in double for the float32 values rounded here)
inline int RoundF(double x) { return static_cast<int>(x + 0.5); }

void Hue(u8* px, size_t n, double hueFactor) {
  const long long tr = static_cast<long long>(std::trunc(hueFactor * 255));
  const int shift = static_cast<int>(((tr % 256) + 256) % 256);
  const HueTables& T = GetHueTables();
  const u8* hue = T.hue.data();
  const u8* sat = T.sat.data();
  const u8* sector = T.sector.data();
  const u8* ptab = T.p.data();
  const float* fsv = T.fs.data();
  const float* frac = T.frac.data();
  // Branch-free: a grey pixel has s = 0 (the saturation table is 0 where max = min), and s = 0
  // gives p = q = t = v, so every pixel goes through the same steps; the sector picks which of
  // v, t, p, q land in r, g, b.
  static const u8 kPerm[6][3] = {{0, 1, 2}, {3, 0, 2}, {2, 0, 1}, {2, 3, 0}, {1, 2, 0}, {0, 2, 3}};
  for (size_t i = 0; i < n; i += 3) {
    const int r = px[i], g = px[i + 1], b = px[i + 2];
    const int v = std::max(r, std::max(g, b));
    const int minc = std::min(r, std::min(g, b));
    const int ss = sat[(v - minc) * 256 + v];
    const int hh = (hue[(r - g + 255) * 511 + g - b + 255] + shift) & 255;
    u8 vals[4];
    vals[0] = static_cast<u8>(v);
    // (1 - s f) and (1 - s (1 - f)) in float32 steps: each product and difference is exact in
    // double (f and s are 0 or at least 1/255), so single float32 operations round as the
    // TypeScript's f32(double) steps; then v times them, exact in double too
    const float fs = fsv[ss], f = frac[hh];
    const float qfk = 1.0f - fs * f, tfk = 1.0f - fs * (1.0f - f);
    vals[1] = static_cast<u8>(RoundF(static_cast<float>(v) * tfk));
    vals[2] = ptab[v * 256 + ss];
    vals[3] = static_cast<u8>(RoundF(static_cast<float>(v) * qfk));
    const u8* pm = kPerm[sector[hh]];
    px[i] = vals[pm[0]];
    px[i + 1] = vals[pm[1]];
    px[i + 2] = vals[pm[2]];
  }
}

// ---- Gaussian blur: PIL's three extended box blurs per axis ----

constexpr uint32_t kHalf24 = 8388608;

inline u8 Box(uint32_t center, uint32_t far, uint32_t ww, uint32_t fw) {
  return static_cast<u8>((center * ww + far * fw + kHalf24) >> 24);
}

// One horizontal pass of the 3- (r = 0) or 5-tap (r = 1) filter, neighbours clamped to the row.
AWTY_VEC void SmallBoxRows(const u8* src, u8* dst, int width, int height, int r, uint32_t ww, uint32_t fw) {
  const size_t rowLen = static_cast<size_t>(width) * 3;
  const int n = width;
  for (int y = 0; y < height; y++) {
    const u8* s = src + y * rowLen;
    u8* d = dst + y * rowLen;
    for (int x = 0; x < n; x++) {
      if (x == 2 && n > 4) x = n - 2;
      const int xm2 = x > 1 ? x - 2 : 0, xm1 = x > 0 ? x - 1 : 0, xp1 = x < n - 1 ? x + 1 : n - 1, xp2 = x < n - 2 ? x + 2 : n - 1;
      for (int c = 0; c < 3; c++) {
        const uint32_t center = r == 0 ? s[x * 3 + c] : s[xm1 * 3 + c] + s[x * 3 + c] + s[xp1 * 3 + c];
        const uint32_t far = r == 0 ? s[xm1 * 3 + c] + s[xp1 * 3 + c] : s[xm2 * 3 + c] + s[xp2 * 3 + c];
        d[x * 3 + c] = Box(center, far, ww, fw);
      }
    }
    if (n <= 4) continue;
    const size_t e = rowLen - 6;
    if (r == 0) {
      for (size_t i = 6; i < e; i++) d[i] = Box(s[i], static_cast<uint32_t>(s[i - 3]) + s[i + 3], ww, fw);
    } else {
      for (size_t i = 6; i < e; i++) {
        d[i] = Box(static_cast<uint32_t>(s[i - 3]) + s[i] + s[i + 3], static_cast<uint32_t>(s[i - 6]) + s[i + 6], ww, fw);
      }
    }
  }
}

// One vertical pass: whole rows at once, the neighbouring rows clamped to the first and last.
AWTY_VEC void SmallBoxColumns(const u8* src, u8* dst, int width, int height, int r, uint32_t ww, uint32_t fw) {
  const size_t rowLen = static_cast<size_t>(width) * 3;
  const int last = height - 1;
  for (int y = 0; y < height; y++) {
    const u8* o = src + y * rowLen;
    const u8* u1 = src + (y > 0 ? y - 1 : 0) * rowLen;
    const u8* d1 = src + (y < last ? y + 1 : last) * rowLen;
    u8* d = dst + y * rowLen;
    if (r == 0) {
      for (size_t x = 0; x < rowLen; x++) d[x] = Box(o[x], static_cast<uint32_t>(u1[x]) + d1[x], ww, fw);
    } else {
      const u8* u2 = src + (y > 1 ? y - 2 : 0) * rowLen;
      const u8* d2 = src + (y < last - 1 ? y + 2 : last) * rowLen;
      for (size_t x = 0; x < rowLen; x++) {
        d[x] = Box(static_cast<uint32_t>(u1[x]) + o[x] + d1[x], static_cast<uint32_t>(u2[x]) + d2[x], ww, fw);
      }
    }
  }
}

void GaussianBlur(u8* px, int width, int height, double sigma) {
  const int passes = 3;
  const float sigma2 = static_cast<float>(static_cast<double>(static_cast<float>(sigma * sigma)) / passes);
  const float L = static_cast<float>(std::sqrt(static_cast<double>(static_cast<float>(static_cast<double>(static_cast<float>(12.0 * sigma2)) + 1))));
  const int l = static_cast<int>(std::floor(static_cast<double>(static_cast<float>(static_cast<double>(static_cast<float>(L - 1.0)) / 2))));
  float a = static_cast<float>(static_cast<double>(static_cast<float>(2.0 * l + 1)) *
                               static_cast<float>(static_cast<double>(l) * (l + 1) - static_cast<float>(3.0 * sigma2)));
  a = static_cast<float>(static_cast<double>(a) / static_cast<float>(6.0 * static_cast<float>(static_cast<double>(sigma2) - static_cast<double>(l + 1) * (l + 1))));
  const float radius = static_cast<float>(static_cast<double>(l) + a);
  if (radius == 0) return;
  const int r = static_cast<int>(std::trunc(static_cast<double>(radius)));
  const double wwd = std::trunc(static_cast<double>(static_cast<float>(16777216.0 / static_cast<float>(static_cast<double>(static_cast<float>(radius * 2.0)) + 1))));
  const double fwd = std::trunc((16777216.0 - (r * 2.0 + 1) * wwd) / 2);
  // the TypeScript multiplies with Math.imul (32-bit wrapping) and reads the sum unsigned
  const uint32_t ww = static_cast<uint32_t>(static_cast<int64_t>(wwd));
  const uint32_t fw = static_cast<uint32_t>(static_cast<int64_t>(fwd));
  const size_t n = static_cast<size_t>(width) * height * 3;
  if (r <= 1) {
    std::vector<u8>& tmpv = tScratch[2];
    if (tmpv.size() < n) tmpv.resize(n);
    u8* src = px;
    u8* dst = tmpv.data();
    for (int p = 0; p < passes; p++) {
      SmallBoxRows(src, dst, width, height, r, ww, fw);
      std::swap(src, dst);
    }
    for (int p = 0; p < passes; p++) {
      SmallBoxColumns(src, dst, width, height, r, ww, fw);
      std::swap(src, dst);
    }
    return;
  }
  // running sums over padded lines (edges repeated r + 1 times), as the TypeScript
  const int pad = r + 1;
  const size_t bufLen = static_cast<size_t>(std::max(width, height) + 2 * pad) * 3;
  std::vector<int32_t>& A = tInts[0];
  std::vector<int32_t>& B = tInts[1];
  if (A.size() < bufLen) A.resize(bufLen);
  if (B.size() < bufLen) B.resize(bufLen);
  int32_t* bufA = A.data();
  int32_t* bufB = B.data();
  const int w2 = 2 * r + 2;
  auto pass = [&](const int32_t* s, int32_t* d, int cnt) {
    int32_t a0 = 0, a1 = 0, a2 = 0;
    for (int k = 3; k <= (2 * r + 1) * 3; k += 3) {
      a0 += s[k];
      a1 += s[k + 1];
      a2 += s[k + 2];
    }
    for (int x = 0; x < cnt; x++) {
      const int lo = x * 3, hi = (x + w2) * 3;
      if (x > 0) {
        const int add = hi - 3;
        a0 += s[add] - s[lo];
        a1 += s[add + 1] - s[lo + 1];
        a2 += s[add + 2] - s[lo + 2];
      }
      const int o = lo + pad * 3;
      d[o] = static_cast<int32_t>((static_cast<uint32_t>(a0) * ww + static_cast<uint32_t>(s[lo] + s[hi]) * fw + kHalf24) >> 24);
      d[o + 1] = static_cast<int32_t>((static_cast<uint32_t>(a1) * ww + static_cast<uint32_t>(s[lo + 1] + s[hi + 1]) * fw + kHalf24) >> 24);
      d[o + 2] = static_cast<int32_t>((static_cast<uint32_t>(a2) * ww + static_cast<uint32_t>(s[lo + 2] + s[hi + 2]) * fw + kHalf24) >> 24);
    }
  };
  auto edges = [&](int32_t* buf, int cnt) {
    const int f = pad * 3, e = (pad + cnt - 1) * 3;
    const int32_t f0 = buf[f], f1 = buf[f + 1], f2 = buf[f + 2], e0 = buf[e], e1 = buf[e + 1], e2 = buf[e + 2];
    for (int k = 0; k < pad; k++) {
      const int i = k * 3, j = (pad + cnt + k) * 3;
      buf[i] = f0;
      buf[i + 1] = f1;
      buf[i + 2] = f2;
      buf[j] = e0;
      buf[j + 1] = e1;
      buf[j + 2] = e2;
    }
  };
  auto line = [&](size_t base, size_t step, int cnt) {
    size_t s = base;
    for (int x = 0, k = pad * 3; x < cnt; x++, s += step, k += 3) {
      bufA[k] = px[s];
      bufA[k + 1] = px[s + 1];
      bufA[k + 2] = px[s + 2];
    }
    edges(bufA, cnt);
    pass(bufA, bufB, cnt);
    edges(bufB, cnt);
    pass(bufB, bufA, cnt);
    edges(bufA, cnt);
    pass(bufA, bufB, cnt);
    s = base;
    for (int x = 0, k = pad * 3; x < cnt; x++, s += step, k += 3) {
      px[s] = static_cast<u8>(bufB[k]);
      px[s + 1] = static_cast<u8>(bufB[k + 1]);
      px[s + 2] = static_cast<u8>(bufB[k + 2]);
    }
  };
  for (int y = 0; y < height; y++) line(static_cast<size_t>(y) * width * 3, 3, width);
  for (int x = 0; x < width; x++) line(static_cast<size_t>(x) * 3, static_cast<size_t>(width) * 3, height);
}

// ---- PIL's antialiased bilinear and bicubic resamples of a crop ----

constexpr int kPrec = 22;

struct Coeffs {
  std::vector<int32_t> bounds, k;
  int ksize = 0;
};

// PIL's filters: bilinear (a triangle, support 1) and bicubic (a = -0.5, support 2)
inline double BilinearFilter(double x) {
  x = std::fabs(x);
  return x < 1 ? 1 - x : 0;
}
inline double BicubicFilter(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

void MakeCoeffs(int inSize, int outSize, bool bicubic, Coeffs* c) {
  const double scale = static_cast<double>(inSize) / outSize;
  const double filterscale = std::max(1.0, scale);
  const double support = (bicubic ? 2.0 : 1.0) * filterscale;
  const int ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c->ksize = ksize;
  c->bounds.assign(static_cast<size_t>(outSize) * 2, 0);
  c->k.assign(static_cast<size_t>(outSize) * ksize, 0);
  std::vector<double> w(ksize);
  const double ss = 1 / filterscale;
  for (int xx = 0; xx < outSize; xx++) {
    const double center = (xx + 0.5) * scale;
    const int xmin = std::max(0, static_cast<int>(std::trunc(center - support + 0.5)));
    const int xmax = std::min(inSize, static_cast<int>(std::trunc(center + support + 0.5))) - xmin;
    double wsum = 0;
    for (int x = 0; x < xmax; x++) {
      const double t = (static_cast<double>(x + xmin) - center + 0.5) * ss;
      w[x] = bicubic ? BicubicFilter(t) : BilinearFilter(t);
      wsum += w[x];
    }
    for (int x = 0; x < xmax; x++) {
      const double v = wsum != 0 ? w[x] / wsum : w[x];
      c->k[static_cast<size_t>(xx) * ksize + x] =
          static_cast<int32_t>(v < 0 ? std::trunc(-0.5 + v * (1 << kPrec)) : std::trunc(0.5 + v * (1 << kPrec)));
    }
    c->bounds[xx * 2] = xmin;
    c->bounds[xx * 2 + 1] = xmax;
  }
}

inline u8 Shift8(int32_t s) { return static_cast<u8>(Clip8(s >> kPrec)); }

// Resizes the region (top, left, bh, bw) of `src` (srcWidth wide) to ow x oh into `out`.
AWTY_VEC void Resize(const u8* src, int srcWidth, int top, int left, int bh, int bw, int ow, int oh, bool bicubic, u8* out) {
  thread_local Coeffs H, V;
  thread_local std::vector<int32_t> acc;
  MakeCoeffs(bw, ow, bicubic, &H);
  MakeCoeffs(bh, oh, bicubic, &V);
  const bool needH = ow != bw, needV = oh != bh;
  const int32_t half = 1 << (kPrec - 1);
  const int y0 = needV ? V.bounds[0] : 0;
  const int y1 = needV ? V.bounds[(oh - 1) * 2] + V.bounds[(oh - 1) * 2 + 1] : oh;
  const int rows = y1 - y0;
  const int tmpW = needH ? ow : bw;
  const size_t stride = static_cast<size_t>(tmpW) * 3;
  // the horizontal pass writes straight into `out` when there is no vertical pass
  std::vector<u8>& tmpv = tScratch[0];
  if (needV && tmpv.size() < rows * stride) tmpv.resize(rows * stride);
  u8* tmp = needV ? tmpv.data() : out;
  const int32_t* hb = H.bounds.data();
  const int32_t* hk = H.k.data();
  const int hks = H.ksize;
  for (int y = 0; y < rows; y++) {
    const u8* srow = src + (static_cast<size_t>(top + y0 + y) * srcWidth + left) * 3;
    u8* trow = tmp + y * stride;
    if (!needH) {
      std::memcpy(trow, srow, stride);
      continue;
    }
    for (int xx = 0; xx < ow; xx++) {
      const int n = hb[xx * 2 + 1];
      const int32_t* k = hk + static_cast<size_t>(xx) * hks;
      const u8* p = srow + hb[xx * 2] * 3;
      int32_t s0 = half, s1 = half, s2 = half;
      if (n == 2) {
        s0 += p[0] * k[0] + p[3] * k[1];
        s1 += p[1] * k[0] + p[4] * k[1];
        s2 += p[2] * k[0] + p[5] * k[1];
      } else if (n == 3) {
        s0 += p[0] * k[0] + p[3] * k[1] + p[6] * k[2];
        s1 += p[1] * k[0] + p[4] * k[1] + p[7] * k[2];
        s2 += p[2] * k[0] + p[5] * k[1] + p[8] * k[2];
      } else {
        for (int x = 0; x < n; x++, p += 3) {
          s0 += p[0] * k[x];
          s1 += p[1] * k[x];
          s2 += p[2] * k[x];
        }
      }
      trow[xx * 3] = Shift8(s0);
      trow[xx * 3 + 1] = Shift8(s1);
      trow[xx * 3 + 2] = Shift8(s2);
    }
  }
  if (!needV) return;
  const int32_t* vb = V.bounds.data();
  const int32_t* vk = V.k.data();
  const int vks = V.ksize;
  if (acc.size() < stride) acc.resize(stride);
  int32_t* ac = acc.data();
  for (int yy = 0; yy < oh; yy++) {
    const int n = vb[yy * 2 + 1];
    const int32_t* k = vk + static_cast<size_t>(yy) * vks;
    const u8* r0 = tmp + (vb[yy * 2] - y0) * stride;
    u8* orow = out + yy * stride;
    if (n == 2) {
      const int32_t k0 = k[0], k1 = k[1];
      const u8* r1 = r0 + stride;
      for (size_t x = 0; x < stride; x++) orow[x] = Shift8(half + r0[x] * k0 + r1[x] * k1);
    } else if (n == 3) {
      const int32_t k0 = k[0], k1 = k[1], k2 = k[2];
      const u8* r1 = r0 + stride;
      const u8* r2 = r1 + stride;
      for (size_t x = 0; x < stride; x++) orow[x] = Shift8(half + r0[x] * k0 + r1[x] * k1 + r2[x] * k2);
    } else {
      for (size_t x = 0; x < stride; x++) ac[x] = half;
      for (int y = 0; y < n; y++) {
        const int32_t kv = k[y];
        const u8* row = r0 + y * stride;
        for (size_t x = 0; x < stride; x++) ac[x] += row[x] * kv;
      }
      for (size_t x = 0; x < stride; x++) orow[x] = Shift8(ac[x]);
    }
  }
}

// ToTensor + Normalize of HWC uint8 into CHW float32, in float32 steps as torch does.
AWTY_VEC void Normalize(const u8* src, int width, int height, const double* meanStd, float* out) {
  const size_t plane = static_cast<size_t>(width) * height;
  for (int c = 0; c < 3; c++) {
    const float m = static_cast<float>(meanStd[c]), s = static_cast<float>(meanStd[3 + c]);
    float lut[256];
    for (int v = 0; v < 256; v++) {
      const float x = static_cast<float>(v / 255.0);
      const float y = static_cast<float>(static_cast<double>(x) - m);
      lut[v] = static_cast<float>(static_cast<double>(y) / s);
    }
    float* o = out + c * plane;
    const u8* p = src + c;
    for (size_t k = 0; k < plane; k++) o[k] = lut[p[k * 3]];
  }
}

int ArgInt(double v, const char* what) {
  if (!(v >= 0 && v <= 1 << 30) || v != std::trunc(v)) throw std::invalid_argument(std::string("bad ") + what);
  return static_cast<int>(v);
}

// imageApply(src: Uint8Array (HWC RGB, modified), width, height, program: Float64Array,
//            out: Float32Array | Uint8Array, offset (elements), meanStd: Float64Array(6) | null)
// Runs the program on the image and writes the result at out[offset..]: float32 normalised CHW
// (with meanStd), or uint8 HWC. Returns [width, height] of the result.
Napi::Value ImageApplyImpl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 7 || !info[0].IsTypedArray() || !info[3].IsTypedArray() || !info[4].IsTypedArray()) {
    throw Napi::TypeError::New(env, "imageApply(src, width, height, program, out, offset, meanStd)");
  }
  auto srcArr = info[0].As<Napi::TypedArray>();
  if (srcArr.TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(env, "imageApply: src must be a Uint8Array");
  auto progArr = info[3].As<Napi::TypedArray>();
  if (progArr.TypedArrayType() != napi_float64_array) throw Napi::TypeError::New(env, "imageApply: program must be a Float64Array");
  int width = ArgInt(info[1].As<Napi::Number>().DoubleValue(), "width");
  int height = ArgInt(info[2].As<Napi::Number>().DoubleValue(), "height");
  const size_t offset = static_cast<size_t>(ArgInt(info[5].As<Napi::Number>().DoubleValue(), "offset"));
  auto src8 = srcArr.As<Napi::Uint8Array>();
  if (src8.ElementLength() != static_cast<size_t>(width) * height * 3) throw std::invalid_argument("src length is not width * height * 3");
  auto prog = progArr.As<Napi::Float64Array>();
  const double* pr = prog.Data();
  const size_t plen = prog.ElementLength();

  u8* cur = src8.Data();
  int slot = -1;  // the scratch slot that holds `cur`, or -1 for src
  size_t i = 0;
  auto arg = [&](size_t k) -> double {
    if (i + k >= plen) throw std::invalid_argument("program too short");
    return pr[i + k];
  };
  while (i < plen) {
    const int op = static_cast<int>(pr[i]);
    const OpInfo* opInfo = FindOp(op);
    if (!opInfo || opInfo->code != pr[i]) throw std::invalid_argument("unknown op code " + std::to_string(op));
    if (i + opInfo->arity >= plen) throw std::invalid_argument("program too short");
    const size_t n = static_cast<size_t>(width) * height * 3;
    switch (op) {
      case kResize:
      case kResizeBicubic:
      case kCrop: {
        const int top = ArgInt(arg(1), "top"), left = ArgInt(arg(2), "left"), bh = ArgInt(arg(3), "box height"),
                  bw = ArgInt(arg(4), "box width");
        const bool resize = op != kCrop;
        const int ow = resize ? ArgInt(arg(5), "width") : bw, oh = resize ? ArgInt(arg(6), "height") : bh;
        if (bh < 1 || bw < 1 || ow < 1 || oh < 1 || top + bh > height || left + bw > width) throw std::invalid_argument("crop box outside the image");
        const size_t need = static_cast<size_t>(ow) * oh * 3;
        // the result goes into the one of two output buffers that is not being read
        thread_local std::vector<u8> outs[2];
        const int o = slot == 0 ? 1 : 0;
        if (outs[o].size() < need) outs[o].resize(need);
        if (resize) {
          Resize(cur, width, top, left, bh, bw, ow, oh, op == kResizeBicubic, outs[o].data());
        } else {
          for (int y = 0; y < bh; y++) std::memcpy(outs[o].data() + static_cast<size_t>(y) * bw * 3, cur + (static_cast<size_t>(top + y) * width + left) * 3, static_cast<size_t>(bw) * 3);
        }
        cur = outs[o].data();
        slot = o;
        width = ow;
        height = oh;
        break;
      }
      case kBrightness: Brightness(cur, n, arg(1)); break;
      case kContrast: Contrast(cur, n, arg(1)); break;
      case kSaturation: Saturation(cur, n, arg(1)); break;
      case kHue: Hue(cur, n, arg(1)); break;
      case kGrayscale: Grayscale(cur, n); break;
      case kBlur: GaussianBlur(cur, width, height, arg(1)); break;
      case kFlip: Flip(cur, width, height); break;
      default: throw std::invalid_argument(std::string("no kernel for op ") + opInfo->name);
    }
    i += 1 + static_cast<size_t>(opInfo->arity);
  }
  const size_t n = static_cast<size_t>(width) * height * 3;
  auto outArr = info[4].As<Napi::TypedArray>();
  if (outArr.TypedArrayType() == napi_float32_array) {
    if (!info[6].IsTypedArray() || info[6].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        info[6].As<Napi::Float64Array>().ElementLength() != 6) {
      throw Napi::TypeError::New(env, "imageApply: float32 output needs meanStd as a Float64Array of 6");
    }
    auto out = outArr.As<Napi::Float32Array>();
    if (offset + n > out.ElementLength()) throw std::invalid_argument("output array too short");
    Normalize(cur, width, height, info[6].As<Napi::Float64Array>().Data(), out.Data() + offset);
  } else if (outArr.TypedArrayType() == napi_uint8_array) {
    auto out = outArr.As<Napi::Uint8Array>();
    if (offset + n > out.ElementLength()) throw std::invalid_argument("output array too short");
    if (out.Data() + offset != cur) std::memmove(out.Data() + offset, cur, n);
  } else {
    throw Napi::TypeError::New(env, "imageApply: out must be a Float32Array or a Uint8Array");
  }
  Napi::Array dims = Napi::Array::New(env, 2);
  dims.Set(0u, Napi::Number::New(env, width));
  dims.Set(1u, Napi::Number::New(env, height));
  return dims;
}

Napi::Value ImageApply(const Napi::CallbackInfo& info) {
  try {
    return ImageApplyImpl(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("imageApply: ") + e.what());
  }
}

// imageOps() -> { name: [code, arity] } for every op of the table.
Napi::Value ImageOps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  for (const OpInfo& o : kOps) {
    Napi::Array row = Napi::Array::New(env, 2);
    row.Set(0u, Napi::Number::New(env, o.code));
    row.Set(1u, Napi::Number::New(env, o.arity));
    out.Set(o.name, row);
  }
  return out;
}

}  // namespace

void InitImage(Napi::Env env, Napi::Object exports) {
  exports.Set("imageApply", Napi::Function::New(env, ImageApply, "imageApply"));
  exports.Set("imageOps", Napi::Function::New(env, ImageOps, "imageOps"));
}

}  // namespace awty

static Napi::Object InitImageModule(Napi::Env env, Napi::Object exports) {
  awty::InitImage(env, exports);
  return exports;
}
NODE_API_MODULE(awty_image, InitImageModule)
