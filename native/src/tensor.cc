// The tensor handle, argument conversion, creation, metadata, memory, autograd and global state.
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <thread>

#include "common.h"

namespace awty {

std::vector<OpEntry>& Registry() {
  static auto* r = new std::vector<OpEntry>();  // built during static initialisation, never destroyed
  return *r;
}

bool Register(const char* name, OpFn fn) {
  Registry().push_back({name, fn});
  return true;
}

static const napi_type_tag kTensorTag = {0x6177747974656e73ULL, 0x6f7268616e646c65ULL};

static int64_t NBytes(const at::Tensor& t) {
  if (!t.defined()) return 0;
  return static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
}

void TensorHandle::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function f = DefineClass(env, "TensorHandle",
                                 {InstanceMethod("dispose", &TensorHandle::Dispose),
                                  InstanceMethod("isDisposed", &TensorHandle::IsDisposed)});
  // One constructor per Node environment (main thread and each worker thread that loads the addon).
  env.SetInstanceData<Napi::FunctionReference>(new Napi::FunctionReference(Napi::Persistent(f)));
  exports.Set("TensorHandle", f);
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {
  napi_type_tag_object(info.Env(), info.This(), &kTensorTag);
}

TensorHandle::~TensorHandle() = default;

// Garbage-collected without dispose(): free the tensor and give its size back to V8's count.
void TensorHandle::Finalize(Napi::Env env) { Release(env); }

void TensorHandle::Release(Napi::Env env) {
  if (disposed) return;
  disposed = true;
  tensor = at::Tensor();
  if (reported) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -reported);
    reported = 0;
  }
}

Napi::Object TensorHandle::Wrap(Napi::Env env, at::Tensor t, bool report) {
  Napi::Object obj = env.GetInstanceData<Napi::FunctionReference>()->New({});
  TensorHandle* h = Unwrap(obj);
  h->reported = t.device().is_cpu() ? NBytes(t) : 0;
  h->tensor = std::move(t);
  if (report && h->reported) Napi::MemoryManagement::AdjustExternalMemory(env, h->reported);
  return obj;
}

Napi::Value TensorHandle::Dispose(const Napi::CallbackInfo& info) {
  Release(info.Env());
  return info.Env().Undefined();
}

Napi::Value TensorHandle::IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), disposed);
}

// ---- argument conversion -------------------------------------------------------------------

bool IsTensor(const Napi::Value& v) {
  if (!v.IsObject()) return false;
  bool ok = false;
  napi_check_object_type_tag(v.Env(), v, &kTensorTag, &ok);
  return ok;
}

// Thrown as a C++ exception so that the op wrapper adds the op's name and arguments to the message.
static std::invalid_argument ArgError(const Napi::CallbackInfo&, size_t i, const std::string& what) {
  return std::invalid_argument("argument " + std::to_string(i) + ": expected " + what);
}

at::Tensor& T(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = info[i];
  if (!IsTensor(v)) throw ArgError(info, i, "a Tensor");
  TensorHandle* h = TensorHandle::Unwrap(v.As<Napi::Object>());
  if (h->disposed) throw std::invalid_argument("argument " + std::to_string(i) + ": the tensor was disposed and cannot be used");
  return h->tensor;
}

c10::optional<at::Tensor> OptT(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return c10::nullopt;
  return T(info, i);
}

std::vector<at::Tensor> TList(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsArray()) throw ArgError(info, i, "an array of Tensors");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a.Get(k);
    if (!IsTensor(v)) throw ArgError(info, i, "an array of Tensors (element " + std::to_string(k) + " is not)");
    TensorHandle* h = TensorHandle::Unwrap(v.As<Napi::Object>());
    if (h->disposed) throw std::invalid_argument("argument " + std::to_string(i) + ": element " + std::to_string(k) + " was disposed and cannot be used");
    out.push_back(h->tensor);
  }
  return out;
}

static int64_t ToInt(const Napi::CallbackInfo& info, size_t i, const Napi::Value& v) {
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d != static_cast<double>(static_cast<int64_t>(d))) throw ArgError(info, i, "an integer, got " + std::to_string(d));
    return static_cast<int64_t>(d);
  }
  if (v.IsBigInt()) {
    bool lossless = true;
    return v.As<Napi::BigInt>().Int64Value(&lossless);
  }
  throw ArgError(info, i, "an integer");
}

std::vector<int64_t> IntList(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() > i && (info[i].IsNumber() || info[i].IsBigInt())) return {ToInt(info, i, info[i])};
  if (info.Length() <= i || !info[i].IsArray()) throw ArgError(info, i, "an array of integers");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) out[k] = ToInt(info, i, a.Get(k));
  return out;
}

c10::optional<std::vector<int64_t>> OptIntList(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return c10::nullopt;
  return IntList(info, i);
}

int64_t Int(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i) throw ArgError(info, i, "an integer");
  return ToInt(info, i, info[i]);
}

c10::optional<int64_t> OptInt(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return c10::nullopt;
  return Int(info, i);
}

double Num(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    if (info.Length() > i && info[i].IsBoolean()) return info[i].As<Napi::Boolean>().Value() ? 1.0 : 0.0;
    throw ArgError(info, i, "a number");
  }
  return info[i].As<Napi::Number>().DoubleValue();
}

c10::optional<double> OptNum(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return c10::nullopt;
  return Num(info, i);
}

bool Bool(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return false;
  if (!info[i].IsBoolean()) throw ArgError(info, i, "a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

std::string Str(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsString()) throw ArgError(info, i, "a string");
  return info[i].As<Napi::String>().Utf8Value();
}

at::ScalarType DType(const std::string& n) {
  if (n == "float32") return at::kFloat;
  if (n == "float64") return at::kDouble;
  if (n == "float16") return at::kHalf;
  if (n == "bfloat16") return at::kBFloat16;
  if (n == "int64") return at::kLong;
  if (n == "int32") return at::kInt;
  if (n == "int16") return at::kShort;
  if (n == "int8") return at::kChar;
  if (n == "uint8") return at::kByte;
  if (n == "bool") return at::kBool;
  throw std::invalid_argument("unknown dtype '" + n + "'");
}

c10::optional<at::ScalarType> OptDType(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return c10::nullopt;
  return DType(Str(info, i));
}

std::string DTypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kShort: return "int16";
    case at::kChar: return "int8";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return std::string(c10::toString(t));
  }
}

at::Device Dev(const std::string& name) { return at::Device(name); }

at::TensorOptions Options(const Napi::CallbackInfo& info, size_t dtypeArg, size_t deviceArg) {
  at::TensorOptions o = at::TensorOptions().dtype(at::kFloat);
  if (auto d = OptDType(info, dtypeArg)) o = o.dtype(*d);
  if (info.Length() > deviceArg && info[deviceArg].IsString()) o = o.device(Dev(Str(info, deviceArg)));
  return o;
}

Napi::Value W(Napi::Env env, const at::Tensor& t) { return TensorHandle::Wrap(env, t); }

// Many handles, reported to V8 as one change of external memory: V8 starts a garbage collection
// each time the reported total grows by its limit (64 MiB), so one report per tensor of a large list
// (a checkpoint's hundreds of tensors) would collect several times over.
Napi::Value WList(Napi::Env env, const std::vector<at::Tensor>& ts) {
  Napi::Array a = Napi::Array::New(env, ts.size());
  int64_t total = 0;
  for (size_t k = 0; k < ts.size(); k++) {
    Napi::Object h = TensorHandle::Wrap(env, ts[k], false);
    total += TensorHandle::Unwrap(h)->reported;
    a.Set(static_cast<uint32_t>(k), h);
  }
  if (total) Napi::MemoryManagement::AdjustExternalMemory(env, total);
  return a;
}

static std::string Shape(const at::Tensor& t) {
  std::ostringstream s;
  s << "[";
  for (int64_t d = 0; d < t.dim(); d++) s << (d ? ", " : "") << t.size(d);
  s << "] " << DTypeName(t.scalar_type());
  if (!t.device().is_cpu()) s << " " << t.device();
  return s.str();
}

std::string DescribeArgs(const Napi::CallbackInfo& info) {
  std::ostringstream s;
  s << "(";
  for (size_t i = 0; i < info.Length(); i++) {
    if (i) s << ", ";
    Napi::Value v = info[i];
    if (IsTensor(v)) {
      TensorHandle* h = TensorHandle::Unwrap(v.As<Napi::Object>());
      s << (h->disposed ? std::string("<disposed tensor>") : "tensor " + Shape(h->tensor));
    } else if (v.IsNumber()) {
      s << v.As<Napi::Number>().DoubleValue();
    } else if (v.IsBoolean()) {
      s << (v.As<Napi::Boolean>().Value() ? "true" : "false");
    } else if (v.IsString()) {
      s << "'" << v.As<Napi::String>().Utf8Value() << "'";
    } else if (v.IsArray()) {
      Napi::Array a = v.As<Napi::Array>();
      s << "[";
      for (uint32_t k = 0; k < a.Length() && k < 8; k++) {
        Napi::Value e = a.Get(k);
        if (k) s << ", ";
        if (e.IsNumber()) s << e.As<Napi::Number>().DoubleValue();
        else if (IsTensor(e)) {
          TensorHandle* h = TensorHandle::Unwrap(e.As<Napi::Object>());
          s << (h->disposed ? std::string("<disposed>") : Shape(h->tensor));
        } else s << "?";
      }
      if (a.Length() > 8) s << ", ...";
      s << "]";
    } else if (v.IsUndefined() || v.IsNull()) {
      s << "none";
    } else {
      s << "?";
    }
  }
  s << ")";
  return s.str();
}

// ---- creation --------------------------------------------------------------------------------

AWTY_OP(empty) { return W(info.Env(), at::empty(IntList(info, 0), Options(info, 1, 2))); }
AWTY_OP(zeros) { return W(info.Env(), at::zeros(IntList(info, 0), Options(info, 1, 2))); }
AWTY_OP(ones) { return W(info.Env(), at::ones(IntList(info, 0), Options(info, 1, 2))); }
AWTY_OP(full) { return W(info.Env(), at::full(IntList(info, 0), Num(info, 1), Options(info, 2, 3))); }
AWTY_OP(arange) {
  return W(info.Env(), at::arange(Num(info, 0), Num(info, 1), Num(info, 2), Options(info, 3, 4)));
}
AWTY_OP(rand) { return W(info.Env(), at::rand(IntList(info, 0), Options(info, 1, 2))); }
AWTY_OP(randn) { return W(info.Env(), at::randn(IntList(info, 0), Options(info, 1, 2))); }
AWTY_OP(randint) {
  at::TensorOptions o = Options(info, 3, 4);
  if (!OptDType(info, 3)) o = o.dtype(at::kLong);
  return W(info.Env(), at::randint(Int(info, 0), Int(info, 1), IntList(info, 2), o));
}
AWTY_OP(randperm) {
  at::TensorOptions o = at::TensorOptions().dtype(at::kLong);
  return W(info.Env(), at::randperm(Int(info, 0), o));
}
AWTY_OP(eye) { return W(info.Env(), at::eye(Int(info, 0), Options(info, 1, 2))); }

// fromBuffer(typedArrayOrArrayBuffer, shape, dtype): one copy of the bytes into a new CPU tensor.
AWTY_OP(fromBuffer) {
  const uint8_t* src = nullptr;
  size_t len = 0;
  if (info[0].IsTypedArray()) {
    Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
    src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    len = ta.ByteLength();
  } else if (info[0].IsArrayBuffer()) {
    Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
    src = static_cast<const uint8_t*>(ab.Data());
    len = ab.ByteLength();
  } else if (info[0].IsDataView()) {
    Napi::DataView dv = info[0].As<Napi::DataView>();
    src = static_cast<const uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    len = dv.ByteLength();
  } else {
    throw Napi::TypeError::New(info.Env(), "fromBuffer: expected a TypedArray, ArrayBuffer or DataView");
  }
  at::ScalarType dt = DType(Str(info, 2));
  at::Tensor t = at::empty(IntList(info, 1), at::TensorOptions().dtype(dt));
  size_t need = static_cast<size_t>(t.numel()) * t.element_size();
  if (need != len)
    throw Napi::RangeError::New(info.Env(), "fromBuffer: " + std::to_string(len) + " bytes given but shape " +
                                                Shape(t) + " needs " + std::to_string(need));
  if (need) std::memcpy(t.data_ptr(), src, need);
  return W(info.Env(), t);
}

// readFile(fd, items: [position, shape, dtype][], threads): Promise<TensorHandle[]>: one new CPU
// tensor per item holding the file's bytes at that position (numel x element size of them), read
// with positional reads off the main thread, the items split by bytes over up to `threads` threads
// so that the copies from the page cache and the first touch of the tensors' pages use every core.
// A file that ends before an item's bytes rejects the promise naming the item and the bytes.
class ReadFileWorker : public Napi::AsyncWorker {
 public:
  struct Item { int64_t position; std::vector<int64_t> shape; at::ScalarType dtype; };
  ReadFileWorker(Napi::Env env, int fd, std::vector<Item> items, int threads)
      : Napi::AsyncWorker(env, "awty.readFile"), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd),
        items_(std::move(items)), threads_(std::max(1, threads)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      out_.resize(items_.size());
      std::vector<size_t> bytes(items_.size());
      size_t total = 0;
      for (size_t k = 0; k < items_.size(); k++) {
        out_[k] = at::empty(items_[k].shape, at::TensorOptions().dtype(items_[k].dtype));
        bytes[k] = static_cast<size_t>(out_[k].numel()) * out_[k].element_size();
        total += bytes[k];
      }
      // contiguous runs of items of about equal bytes, one per thread (the file is read in order
      // within each run, so read-ahead still works when it is not in the page cache)
      int n = static_cast<int>(std::min<size_t>(threads_, std::max<size_t>(1, total >> 24)));
      std::vector<size_t> cut{0};
      size_t acc = 0;
      for (size_t k = 0; k < items_.size() && static_cast<int>(cut.size()) < n; k++) {
        acc += bytes[k];
        if (acc * n >= total * cut.size()) cut.push_back(k + 1);
      }
      while (cut.size() <= static_cast<size_t>(n)) cut.push_back(items_.size());
      cut.back() = items_.size();
      std::vector<std::string> errors(n);
      auto run = [&](int r) {
        for (size_t k = cut[r]; k < cut[r + 1] && errors[r].empty(); k++) {
          auto* p = static_cast<uint8_t*>(out_[k].data_ptr());
          size_t done = 0;
          while (done < bytes[k]) {
            size_t want = std::min<size_t>(bytes[k] - done, size_t(1) << 30);
            ssize_t got = pread(fd_, p + done, want, static_cast<off_t>(items_[k].position + done));
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) {
              errors[r] = "item " + std::to_string(k) + ": " +
                          (got < 0 ? std::string(std::strerror(errno))
                                   : "file ends at byte " + std::to_string(items_[k].position + done) + ", " +
                                         std::to_string(bytes[k] - done) + " bytes short of the " + std::to_string(bytes[k]) +
                                         "-byte record at " + std::to_string(items_[k].position));
              break;
            }
            done += static_cast<size_t>(got);
          }
        }
      };
      std::vector<std::thread> pool;
      for (int r = 1; r < n; r++) pool.emplace_back(run, r);
      run(0);
      for (auto& t : pool) t.join();
      for (auto& e : errors) if (!e.empty()) { out_.clear(); SetError(e); return; }
    } catch (const c10::Error& e) {
      out_.clear();
      SetError(e.what_without_backtrace());
    } catch (const std::exception& e) {
      out_.clear();
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(WList(Env(), out_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  std::vector<Item> items_;
  int threads_;
  std::vector<at::Tensor> out_;
};

AWTY_OP(readFile) {
  int fd = static_cast<int>(Int(info, 0));
  if (!info[1].IsArray()) throw Napi::TypeError::New(info.Env(), "readFile: expected an array of [position, shape, dtype] items");
  Napi::Array a = info[1].As<Napi::Array>();
  std::vector<ReadFileWorker::Item> items;
  items.reserve(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a.Get(k);
    if (!v.IsArray() || v.As<Napi::Array>().Length() != 3) throw Napi::TypeError::New(info.Env(), "readFile: item " + std::to_string(k) + " is not [position, shape, dtype]");
    Napi::Array it = v.As<Napi::Array>();
    Napi::Value pos = it.Get(0u), shape = it.Get(1u), dtype = it.Get(2u);
    if (!pos.IsNumber() || pos.As<Napi::Number>().DoubleValue() < 0 || !shape.IsArray() || !dtype.IsString())
      throw Napi::TypeError::New(info.Env(), "readFile: item " + std::to_string(k) + " is not [position >= 0, shape, dtype]");
    std::vector<int64_t> dims;
    Napi::Array sa = shape.As<Napi::Array>();
    for (uint32_t d = 0; d < sa.Length(); d++) {
      Napi::Value x = sa.Get(d);
      if (!x.IsNumber() || x.As<Napi::Number>().DoubleValue() < 0) throw Napi::TypeError::New(info.Env(), "readFile: item " + std::to_string(k) + ": shape entries must be numbers >= 0");
      dims.push_back(x.As<Napi::Number>().Int64Value());
    }
    items.push_back({pos.As<Napi::Number>().Int64Value(), std::move(dims), DType(dtype.As<Napi::String>().Utf8Value())});
  }
  auto* w = new ReadFileWorker(info.Env(), fd, std::move(items), static_cast<int>(Int(info, 2)));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

static void FreeTensorCopy(Napi::Env, void*, at::Tensor* hint) { delete hint; }

// buffer(t): the bytes of a contiguous CPU tensor as an ArrayBuffer sharing its memory (no copy);
// the ArrayBuffer keeps the storage alive.
AWTY_OP(buffer) {
  at::Tensor& t = T(info, 0);
  if (!t.device().is_cpu()) throw Napi::Error::New(info.Env(), "buffer: tensor is on " + t.device().str() + "; move it to cpu first");
  if (!t.is_contiguous()) throw Napi::Error::New(info.Env(), "buffer: tensor is not contiguous; call contiguous() first");
  size_t n = static_cast<size_t>(t.numel()) * t.element_size();
  if (n == 0) return Napi::ArrayBuffer::New(info.Env(), 0);
  auto* keep = new at::Tensor(t);
  return Napi::ArrayBuffer::New(info.Env(), keep->data_ptr(), n, FreeTensorCopy, keep);
}

// ---- metadata --------------------------------------------------------------------------------

AWTY_OP(shape) {
  at::Tensor& t = T(info, 0);
  Napi::Array a = Napi::Array::New(info.Env(), t.dim());
  for (int64_t d = 0; d < t.dim(); d++) a.Set(static_cast<uint32_t>(d), Napi::Number::New(info.Env(), static_cast<double>(t.size(d))));
  return a;
}
AWTY_OP(strides) {
  at::Tensor& t = T(info, 0);
  Napi::Array a = Napi::Array::New(info.Env(), t.dim());
  for (int64_t d = 0; d < t.dim(); d++) a.Set(static_cast<uint32_t>(d), Napi::Number::New(info.Env(), static_cast<double>(t.stride(d))));
  return a;
}
AWTY_OP(storageOffset) { return Napi::Number::New(info.Env(), static_cast<double>(T(info, 0).storage_offset())); }
AWTY_OP(dtype) { return Napi::String::New(info.Env(), DTypeName(T(info, 0).scalar_type())); }
AWTY_OP(device) { return Napi::String::New(info.Env(), T(info, 0).device().str()); }
AWTY_OP(numel) { return Napi::Number::New(info.Env(), static_cast<double>(T(info, 0).numel())); }
AWTY_OP(dim) { return Napi::Number::New(info.Env(), static_cast<double>(T(info, 0).dim())); }
AWTY_OP(isContiguous) { return Napi::Boolean::New(info.Env(), T(info, 0).is_contiguous()); }
AWTY_OP(sameStorage) {
  return Napi::Boolean::New(info.Env(), T(info, 0).storage().is_alias_of(T(info, 1).storage()));
}
// An identity of the tensor's storage, equal for every view of it (while the storage lives).
AWTY_OP(storageKey) {
  const void* impl = T(info, 0).storage().unsafeGetStorageImpl();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", impl);
  return Napi::String::New(info.Env(), buf);
}
AWTY_OP(item) {
  at::Tensor& t = T(info, 0);
  if (t.numel() != 1) throw Napi::RangeError::New(info.Env(), "item: tensor " + Shape(t) + " has " + std::to_string(t.numel()) + " elements, expected 1");
  at::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(info.Env(), s.toBool());
  if (s.isIntegral(false)) return Napi::Number::New(info.Env(), static_cast<double>(s.toLong()));
  return Napi::Number::New(info.Env(), s.toDouble());
}

// ---- conversion and copies -------------------------------------------------------------------

AWTY_OP(to) {
  at::Tensor& t = T(info, 0);
  at::TensorOptions o = t.options();
  if (auto d = OptDType(info, 1)) o = o.dtype(*d);
  if (info.Length() > 2 && info[2].IsString()) o = o.device(Dev(Str(info, 2)));
  return W(info.Env(), t.to(o, /*non_blocking=*/false, /*copy=*/Bool(info, 3)));
}
AWTY_OP(clone) { return W(info.Env(), T(info, 0).clone()); }
AWTY_OP(contiguous) { return W(info.Env(), T(info, 0).contiguous()); }
AWTY_OP(detach) { return W(info.Env(), T(info, 0).detach()); }
AWTY_OP(copy_) {
  T(info, 0).copy_(T(info, 1));
  return info[0];
}
AWTY_OP(alias) { return W(info.Env(), T(info, 0)); }

// ---- autograd --------------------------------------------------------------------------------

AWTY_OP(requiresGrad) { return Napi::Boolean::New(info.Env(), T(info, 0).requires_grad()); }
AWTY_OP(setRequiresGrad) {
  T(info, 0).set_requires_grad(Bool(info, 1));
  return info.Env().Undefined();
}
AWTY_OP(isLeaf) { return Napi::Boolean::New(info.Env(), T(info, 0).is_leaf()); }
// grad(t, known?): t's gradient, or undefined. `known` (a handle given out before) is returned itself
// while it still holds that same gradient, so that reading .grad makes no new handle each time.
AWTY_OP(grad) {
  const at::Tensor& g = T(info, 0).grad();
  if (!g.defined()) return info.Env().Undefined();
  if (info.Length() > 1 && IsTensor(info[1])) {
    TensorHandle* k = TensorHandle::Unwrap(info[1].As<Napi::Object>());
    if (!k->disposed && k->tensor.unsafeGetTensorImpl() == g.unsafeGetTensorImpl()) return info[1];
  }
  return W(info.Env(), g);
}
AWTY_OP(setGrad) {
  at::Tensor& t = T(info, 0);
  if (auto g = OptT(info, 1)) t.mutable_grad() = *g;
  else t.mutable_grad() = at::Tensor();
  return info.Env().Undefined();
}
AWTY_OP(backward) {
  at::Tensor& t = T(info, 0);
  auto g = OptT(info, 1);
  t.backward(g ? *g : at::Tensor(), /*retain_graph=*/Bool(info, 2) ? c10::optional<bool>(true) : c10::nullopt, /*create_graph=*/false);
  return info.Env().Undefined();
}

static Napi::Value CallJs(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsFunction()) throw Napi::TypeError::New(info.Env(), "expected a function");
  return info[i].As<Napi::Function>().Call({});
}
AWTY_OP(withNoGrad) {
  at::NoGradGuard guard;
  return CallJs(info, 0);
}
AWTY_OP(withEnableGrad) {
  at::AutoGradMode guard(true);
  return CallJs(info, 0);
}
AWTY_OP(withInferenceMode) {
  c10::InferenceMode guard;
  return CallJs(info, 0);
}
AWTY_OP(isGradEnabled) { return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled()); }
AWTY_OP(setGradEnabled) {
  at::GradMode::set_enabled(Bool(info, 0));
  return info.Env().Undefined();
}
AWTY_OP(isInferenceMode) { return Napi::Boolean::New(info.Env(), c10::InferenceMode::is_enabled()); }

// ---- global state ----------------------------------------------------------------------------

AWTY_OP(manualSeed) {
  torch::manual_seed(static_cast<uint64_t>(Int(info, 0)));
  return info.Env().Undefined();
}
AWTY_OP(setNumThreads) {
  int64_t n = Int(info, 0);
  if (n < 1) throw Napi::RangeError::New(info.Env(), "setNumThreads: need at least 1 thread, got " + std::to_string(n));
  at::set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}
AWTY_OP(getNumThreads) { return Napi::Number::New(info.Env(), at::get_num_threads()); }
AWTY_OP(cudaIsAvailable) { return Napi::Boolean::New(info.Env(), torch::cuda::is_available()); }
AWTY_OP(cudaDeviceCount) { return Napi::Number::New(info.Env(), static_cast<double>(torch::cuda::device_count())); }
AWTY_OP(cudaSynchronize) {
#if AWTY_CUDA
  if (torch::cuda::is_available()) torch::cuda::synchronize();
#endif
  return info.Env().Undefined();
}
AWTY_OP(buildInfo) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("torchVersion", std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH));
  o.Set("cudaBuilt", Napi::Boolean::New(info.Env(), AWTY_CUDA != 0));
  o.Set("parallelInfo", at::get_parallel_info());
  return o;
}

}  // namespace awty

using namespace awty;

// The exports: the tensor handle class and every AWTY_OP of the addon's files, each under its name.
static Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  TensorHandle::Init(env, exports);
  for (const OpEntry& e : Registry()) {
    if (exports.HasOwnProperty(e.name)) throw Napi::Error::New(env, std::string("awty_native: two ops named ") + e.name);
    exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
  }
  return exports;
}

NODE_API_MODULE(awty_native, InitAll)
