// Shared helpers of the addon: the tensor handle, argument conversion, and libtorch errors turned
// into JS exceptions that name the op and the shapes of its tensor arguments.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace awty {

// A JS-visible handle owning one at::Tensor (undefined once disposed). Its native size is reported
// to V8 so that garbage collection sees real memory pressure.
class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  // report=false: the caller reports the handle's size itself (e.g. once for many handles, so that
  // V8 sees one change of external memory instead of one per tensor).
  static Napi::Object Wrap(Napi::Env env, at::Tensor t, bool report = true);
  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;

  at::Tensor tensor;
  bool disposed = false;
  int64_t reported = 0;
  void Release(Napi::Env env);
  void Finalize(Napi::Env env) override;

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
};

// Argument access. All throw Napi::Error with a clear message on a wrong argument.
at::Tensor& T(const Napi::CallbackInfo& info, size_t i);
c10::optional<at::Tensor> OptT(const Napi::CallbackInfo& info, size_t i);
std::vector<at::Tensor> TList(const Napi::CallbackInfo& info, size_t i);
std::vector<int64_t> IntList(const Napi::CallbackInfo& info, size_t i);
c10::optional<std::vector<int64_t>> OptIntList(const Napi::CallbackInfo& info, size_t i);
int64_t Int(const Napi::CallbackInfo& info, size_t i);
c10::optional<int64_t> OptInt(const Napi::CallbackInfo& info, size_t i);
double Num(const Napi::CallbackInfo& info, size_t i);
c10::optional<double> OptNum(const Napi::CallbackInfo& info, size_t i);
bool Bool(const Napi::CallbackInfo& info, size_t i);
std::string Str(const Napi::CallbackInfo& info, size_t i);
bool IsTensor(const Napi::Value& v);
at::ScalarType DType(const std::string& name);
c10::optional<at::ScalarType> OptDType(const Napi::CallbackInfo& info, size_t i);
std::string DTypeName(at::ScalarType t);
at::Device Dev(const std::string& name);
at::TensorOptions Options(const Napi::CallbackInfo& info, size_t dtypeArg, size_t deviceArg);

Napi::Value W(Napi::Env env, const at::Tensor& t);
Napi::Value WList(Napi::Env env, const std::vector<at::Tensor>& ts);

std::string DescribeArgs(const Napi::CallbackInfo& info);

// Every export of the addon: its name and function, in definition order. AWTY_OP adds to it, so the
// definition of an op is its registration (there is no second list to keep in step); the module's
// init (tensor.cc) sets each entry on the exports object.
using OpFn = Napi::Value (*)(const Napi::CallbackInfo&);
struct OpEntry {
  const char* name;
  OpFn fn;
};
std::vector<OpEntry>& Registry();
bool Register(const char* name, OpFn fn);

// Defines and registers a JS-callable function whose libtorch errors become JS errors naming the op
// and the shapes of its arguments.
#define AWTY_OP(name)                                                                           \
  static Napi::Value name##_impl(const Napi::CallbackInfo& info);                               \
  static Napi::Value op_##name(const Napi::CallbackInfo& info) {                                \
    try {                                                                                       \
      return name##_impl(info);                                                                 \
    } catch (const Napi::Error&) {                                                              \
      throw;                                                                                    \
    } catch (const c10::Error& e) {                                                             \
      throw Napi::Error::New(info.Env(), std::string(#name) + DescribeArgs(info) + ": " +       \
                                             e.what_without_backtrace());                       \
    } catch (const std::exception& e) {                                                         \
      throw Napi::Error::New(info.Env(), std::string(#name) + DescribeArgs(info) + ": " + e.what()); \
    }                                                                                           \
  }                                                                                             \
  [[maybe_unused]] static const bool name##_registered = Register(#name, op_##name);            \
  static Napi::Value name##_impl(const Napi::CallbackInfo& info)

}  // namespace awty
