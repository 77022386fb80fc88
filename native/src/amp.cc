// Memory formats (channels_last), autocast (at::autocast) and GradScaler's kernels: one libtorch
// call each; the policy (which format, when to scale) lives in TypeScript.
#include <ATen/autocast_mode.h>

#include "common.h"

namespace awty {

static at::MemoryFormat MemFmt(const std::string& n) {
  if (n == "contiguousFormat") return at::MemoryFormat::Contiguous;
  if (n == "channelsLast") return at::MemoryFormat::ChannelsLast;
  if (n == "channelsLast3d") return at::MemoryFormat::ChannelsLast3d;
  if (n == "preserveFormat") return at::MemoryFormat::Preserve;
  throw std::invalid_argument("memory format must be 'contiguousFormat', 'channelsLast', 'channelsLast3d' or 'preserveFormat', got '" + n + "'");
}
static std::string MemFmtName(at::MemoryFormat f) {
  switch (f) {
    case at::MemoryFormat::ChannelsLast: return "channelsLast";
    case at::MemoryFormat::ChannelsLast3d: return "channelsLast3d";
    case at::MemoryFormat::Preserve: return "preserveFormat";
    default: return "contiguousFormat";
  }
}
static at::MemoryFormat OptMemFmt(const Napi::CallbackInfo& info, size_t i, at::MemoryFormat dflt) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return dflt;
  return MemFmt(Str(info, i));
}
static at::TensorOptions LikeOptions(const Napi::CallbackInfo& info, const at::Tensor& t, size_t dtypeArg, size_t deviceArg) {
  at::TensorOptions o = t.options();
  if (auto d = OptDType(info, dtypeArg)) o = o.dtype(*d);
  if (info.Length() > deviceArg && info[deviceArg].IsString()) o = o.device(Dev(Str(info, deviceArg)));
  return o;
}

// ---- memory formats ----------------------------------------------------------------------------

// contiguousAs(t, format): t.contiguous(memory_format)
AWTY_OP(contiguousAs) { return W(info.Env(), T(info, 0).contiguous(MemFmt(Str(info, 1)))); }
// isContiguousAs(t, format): t.is_contiguous(memory_format)
AWTY_OP(isContiguousAs) { return Napi::Boolean::New(info.Env(), T(info, 0).is_contiguous(MemFmt(Str(info, 1)))); }
// suggestMemoryFormat(t): the format libtorch's kernels pick for t
AWTY_OP(suggestMemoryFormat) { return Napi::String::New(info.Env(), MemFmtName(T(info, 0).suggest_memory_format())); }
// toMemoryFormat(t, dtype?, device?, copy, format): t.to(options, non_blocking=false, copy, memory_format)
AWTY_OP(toMemoryFormat) {
  at::Tensor& t = T(info, 0);
  return W(info.Env(), t.to(LikeOptions(info, t, 1, 2), /*non_blocking=*/false, Bool(info, 3), MemFmt(Str(info, 4))));
}
// emptyLike / zerosLike(t, dtype?, device?, format = preserveFormat)
AWTY_OP(emptyLike) {
  at::Tensor& t = T(info, 0);
  return W(info.Env(), at::empty_like(t, LikeOptions(info, t, 1, 2), OptMemFmt(info, 3, at::MemoryFormat::Preserve)));
}
AWTY_OP(zerosLike) {
  at::Tensor& t = T(info, 0);
  return W(info.Env(), at::zeros_like(t, LikeOptions(info, t, 1, 2), OptMemFmt(info, 3, at::MemoryFormat::Preserve)));
}

// ---- autocast ----------------------------------------------------------------------------------

// The autocast state torch.autocast's __enter__ saves and its __exit__ restores (also on a throw).
struct AutocastGuard {
  bool cpu;
  bool prevEnabled;
  at::ScalarType prevDtype;
  bool prevCache;
  AutocastGuard(bool cpuDevice, bool enabled, at::ScalarType dtype, bool cache) : cpu(cpuDevice) {
    prevCache = at::autocast::is_autocast_cache_enabled();
    if (cpu) {
      prevEnabled = at::autocast::is_cpu_enabled();
      prevDtype = at::autocast::get_autocast_cpu_dtype();
      at::autocast::set_cpu_enabled(enabled);
      at::autocast::set_autocast_cpu_dtype(dtype);
    } else {
      prevEnabled = at::autocast::is_enabled();
      prevDtype = at::autocast::get_autocast_gpu_dtype();
      at::autocast::set_enabled(enabled);
      at::autocast::set_autocast_gpu_dtype(dtype);
    }
    at::autocast::increment_nesting();
    at::autocast::set_autocast_cache_enabled(cache);
  }
  ~AutocastGuard() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    if (cpu) {
      at::autocast::set_cpu_enabled(prevEnabled);
      at::autocast::set_autocast_cpu_dtype(prevDtype);
    } else {
      at::autocast::set_enabled(prevEnabled);
      at::autocast::set_autocast_gpu_dtype(prevDtype);
    }
    at::autocast::set_autocast_cache_enabled(prevCache);
  }
};

// withAutocast(deviceType 'cpu' | 'cuda', enabled, dtype, cacheEnabled, fn): fn() inside the guard
AWTY_OP(withAutocast) {
  std::string dev = Str(info, 0);
  if (dev != "cpu" && dev != "cuda") throw std::invalid_argument("autocast: device type must be 'cpu' or 'cuda', got '" + dev + "'");
  if (!info[4].IsFunction()) throw Napi::TypeError::New(info.Env(), "autocast: expected a function");
  AutocastGuard guard(dev == "cpu", Bool(info, 1), DType(Str(info, 2)), Bool(info, 3));
  return info[4].As<Napi::Function>().Call({});
}
// autocastState(): whether autocast is on for each device type and its dtype
AWTY_OP(autocastState) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("cpuEnabled", at::autocast::is_cpu_enabled());
  o.Set("cpuDtype", DTypeName(at::autocast::get_autocast_cpu_dtype()));
  o.Set("cudaEnabled", at::autocast::is_enabled());
  o.Set("cudaDtype", DTypeName(at::autocast::get_autocast_gpu_dtype()));
  o.Set("cacheEnabled", at::autocast::is_autocast_cache_enabled());
  return o;
}

// ---- GradScaler's kernels (CUDA only in libtorch 1.13) -----------------------------------------

// ampForeachNonFiniteCheckAndUnscale_(grads, foundInf, invScale)
AWTY_OP(ampForeachNonFiniteCheckAndUnscale_) {
  std::vector<at::Tensor> grads = TList(info, 0);
  at::Tensor& found = T(info, 1);
  at::_amp_foreach_non_finite_check_and_unscale_(grads, found, T(info, 2));
  return info.Env().Undefined();
}
// ampUpdateScale_(scale, growthTracker, foundInf, growthFactor, backoffFactor, growthInterval)
AWTY_OP(ampUpdateScale_) {
  at::Tensor& scale = T(info, 0);
  at::Tensor& tracker = T(info, 1);
  at::_amp_update_scale_(scale, tracker, T(info, 2), Num(info, 3), Num(info, 4), Int(info, 5));
  return info[0];
}

}  // namespace awty
