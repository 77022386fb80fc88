// JPEG encoding of interleaved 8-bit RGB frames with the system libjpeg(-turbo), on libuv's pool:
// the settings sharp (libvips jpegsave) uses for `.jpeg({ quality })` — jpeg_set_quality(q, TRUE),
// Huffman tables optimised, 4:2:0 chroma, the integer DCT, no JFIF, EXIF or ICC markers — without
// sharp's per-call set-up (its options object, libvips' pipeline and worker hand-off). Whether the
// bytes are sharp's is checked by the TypeScript side (src/data/jpeg.ts) before it is used. Built
// alone as `awty_jpeg.node` (no libtorch), only where libjpeg's headers are found.
#include <napi.h>

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <jpeglib.h>

namespace {

struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void OnError(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void Quiet(j_common_ptr, int) {}

/** Encodes `rgb` (width x height x 3); returns false with `error` set when libjpeg fails. */
bool Encode(const unsigned char* rgb, int width, int height, int quality, unsigned char** out, unsigned long* outSize,
            std::string* error) {
  jpeg_compress_struct cinfo;
  ErrorManager err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = OnError;
  err.pub.emit_message = Quiet;
  *out = nullptr;
  *outSize = 0;
  if (setjmp(err.jump)) {
    *error = err.message;
    jpeg_destroy_compress(&cinfo);
    std::free(*out);
    *out = nullptr;
    return false;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, out, outSize);
  cinfo.image_width = static_cast<JDIMENSION>(width);
  cinfo.image_height = static_cast<JDIMENSION>(height);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);  // YCbCr, 2x2 luma sampling (4:2:0), JDCT_ISLOW
  jpeg_set_quality(&cinfo, quality, TRUE);
  cinfo.optimize_coding = TRUE;
  cinfo.write_JFIF_header = FALSE;
  jpeg_start_compress(&cinfo, TRUE);
  const size_t stride = static_cast<size_t>(width) * 3;
  JSAMPROW rows[16];
  while (cinfo.next_scanline < cinfo.image_height) {
    JDIMENSION n = 0;
    while (n < 16 && cinfo.next_scanline + n < cinfo.image_height) {
      rows[n] = const_cast<JSAMPROW>(rgb + (cinfo.next_scanline + n) * stride);
      n++;
    }
    jpeg_write_scanlines(&cinfo, rows, n);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return true;
}

class EncodeWorker : public Napi::AsyncWorker {
 public:
  EncodeWorker(Napi::Env env, Napi::Buffer<unsigned char> input, int width, int height, int quality)
      : Napi::AsyncWorker(env, "awty.jpegEncodeRgb"), deferred_(Napi::Promise::Deferred::New(env)),
        input_(Napi::Persistent(input)), data_(input.Data()), width_(width), height_(height), quality_(quality) {}

  ~EncodeWorker() override { std::free(out_); }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    std::string error;
    if (!Encode(data_, width_, height_, quality_, &out_, &size_, &error)) SetError("JPEG encoding failed: " + error);
  }

  void OnOK() override {
    unsigned char* out = out_;
    out_ = nullptr;
    deferred_.Resolve(Napi::Buffer<unsigned char>::New(Env(), out, size_, [](Napi::Env, unsigned char* p) { std::free(p); }));
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Buffer<unsigned char>> input_;
  const unsigned char* data_;
  int width_, height_, quality_;
  unsigned char* out_ = nullptr;
  unsigned long size_ = 0;
};

/** jpegEncodeRgb(rgb: Buffer, width, height, quality): Promise<Buffer>; the input must stay unchanged until it settles. */
Napi::Value JpegEncodeRgb(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsBuffer() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber()) {
    throw Napi::TypeError::New(env, "jpegEncodeRgb(rgb: Buffer, width: number, height: number, quality: number)");
  }
  auto input = info[0].As<Napi::Buffer<unsigned char>>();
  const int width = info[1].As<Napi::Number>().Int32Value();
  const int height = info[2].As<Napi::Number>().Int32Value();
  const int quality = info[3].As<Napi::Number>().Int32Value();
  if (width <= 0 || height <= 0 || width > 65500 || height > 65500) throw Napi::RangeError::New(env, "jpegEncodeRgb: bad image size");
  if (quality < 1 || quality > 100) throw Napi::RangeError::New(env, "jpegEncodeRgb: quality must be 1..100");
  if (input.Length() != static_cast<size_t>(width) * static_cast<size_t>(height) * 3) {
    throw Napi::RangeError::New(env, "jpegEncodeRgb: the buffer is not width x height x 3 bytes");
  }
  auto* worker = new EncodeWorker(env, input, width, height, quality);
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

}  // namespace

static Napi::Object InitJpegModule(Napi::Env env, Napi::Object exports) {
  exports.Set("jpegEncodeRgb", Napi::Function::New(env, JpegEncodeRgb, "jpegEncodeRgb"));
  exports.Set("libjpegVersion", Napi::Number::New(env, JPEG_LIB_VERSION));
  return exports;
}
NODE_API_MODULE(awty_jpeg, InitJpegModule)
