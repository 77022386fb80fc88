// c10d: the TCPStore rendezvous, process groups (Gloo for CPU tensors; NCCL where the linked libtorch
// has CUDA), collectives started asynchronously and their work handles. Mechanical: one c10d call per
// function; ranks, buckets, averaging and every other policy live in src/dist/.
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if AWTY_CUDA
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>

#include "common.h"

namespace awty {

namespace {

// Each handle is a JS external owning one intrusive pointer; release() or the finalizer drops it.
struct HolderBase {
  explicit HolderBase(const char* k) : kind(k) {}
  virtual ~HolderBase() = default;
  virtual void reset() = 0;
  const char* kind;
};

template <typename T>
struct Holder : HolderBase {
  Holder(c10::intrusive_ptr<T> p, const char* k) : HolderBase(k), ptr(std::move(p)) {}
  void reset() override { ptr.reset(); }
  c10::intrusive_ptr<T> ptr;
};

template <typename T>
Napi::Value Hold(Napi::Env env, c10::intrusive_ptr<T> p, const char* kind) {
  HolderBase* h = new Holder<T>(std::move(p), kind);
  return Napi::External<HolderBase>::New(env, h, [](Napi::Env, HolderBase* x) { delete x; });
}

HolderBase* Base(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsExternal()) throw std::invalid_argument("argument " + std::to_string(i) + ": expected a c10d handle");
  return info[i].As<Napi::External<HolderBase>>().Data();
}

template <typename T>
c10::intrusive_ptr<T>& Held(const Napi::CallbackInfo& info, size_t i, const char* kind) {
  HolderBase* b = Base(info, i);
  if (b == nullptr || std::string(b->kind) != kind) throw std::invalid_argument("argument " + std::to_string(i) + ": expected a " + kind + " handle");
  auto* h = static_cast<Holder<T>*>(b);
  if (!h->ptr) throw std::invalid_argument(std::string("the ") + kind + " was released");
  return h->ptr;
}

std::chrono::milliseconds Ms(const Napi::CallbackInfo& info, size_t i) { return std::chrono::milliseconds(Int(info, i)); }

c10d::ReduceOp Op(const std::string& name) {
  if (name == "sum") return c10d::ReduceOp::SUM;
  if (name == "product") return c10d::ReduceOp::PRODUCT;
  if (name == "min") return c10d::ReduceOp::MIN;
  if (name == "max") return c10d::ReduceOp::MAX;
  if (name == "avg") return c10d::ReduceOp::AVG;
  throw std::invalid_argument("reduce op must be 'sum', 'product', 'min', 'max' or 'avg', got '" + name + "'");
}

const char* kStore = "c10d store";
const char* kGroup = "c10d process group";
const char* kWork = "c10d work";

}  // namespace

// tcpStore(host, port, isServer, numWorkers (<= 0: unknown), timeoutMs, waitWorkers)
AWTY_OP(tcpStore) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<std::uint16_t>(Int(info, 1));
  o.isServer = Bool(info, 2);
  int64_t n = Int(info, 3);
  if (n > 0) o.numWorkers = static_cast<std::size_t>(n);
  o.timeout = Ms(info, 4);
  o.waitWorkers = Bool(info, 5);
  auto store = c10::make_intrusive<c10d::TCPStore>(Str(info, 0), o);
  return Hold<c10d::Store>(info.Env(), store, kStore);
}
// tcpStorePort(store): the port a server store listens on (useful with port 0)
AWTY_OP(tcpStorePort) {
  auto& s = Held<c10d::Store>(info, 0, kStore);
  auto* tcp = dynamic_cast<c10d::TCPStore*>(s.get());
  if (tcp == nullptr) throw std::invalid_argument("not a TCP store");
  return Napi::Number::New(info.Env(), tcp->getPort());
}
// prefixStore(prefix, store)
AWTY_OP(prefixStore) {
  return Hold<c10d::Store>(info.Env(), c10::make_intrusive<c10d::PrefixStore>(Str(info, 0), Held<c10d::Store>(info, 1, kStore)), kStore);
}
// storeSet(store, key, value: string)
AWTY_OP(storeSet) {
  std::string v = Str(info, 2);
  Held<c10d::Store>(info, 0, kStore)->set(Str(info, 1), std::vector<uint8_t>(v.begin(), v.end()));
  return info.Env().Undefined();
}
// storeGet(store, key): waits for the key up to the store's timeout
AWTY_OP(storeGet) {
  auto v = Held<c10d::Store>(info, 0, kStore)->get(Str(info, 1));
  return Napi::String::New(info.Env(), std::string(v.begin(), v.end()));
}
// storeAdd(store, key, delta) -> new value
AWTY_OP(storeAdd) {
  return Napi::Number::New(info.Env(), static_cast<double>(Held<c10d::Store>(info, 0, kStore)->add(Str(info, 1), Int(info, 2))));
}
// storeWait(store, keys[], timeoutMs)
AWTY_OP(storeWait) {
  Napi::Array a = info[1].As<Napi::Array>();
  std::vector<std::string> keys;
  for (uint32_t i = 0; i < a.Length(); i++) keys.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  Held<c10d::Store>(info, 0, kStore)->wait(keys, Ms(info, 2));
  return info.Env().Undefined();
}

// processGroupGloo(store, rank, size, timeoutMs, deviceKind ('interface' | 'hostname' | 'default'), deviceArg, threads)
AWTY_OP(processGroupGloo) {
  auto opts = c10d::ProcessGroupGloo::Options::create(Ms(info, 3));
  std::string kind = Str(info, 4);
  std::string arg = Str(info, 5);
  if (kind == "interface") opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(arg));
  else if (kind == "hostname") opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(arg));
  else if (kind == "default") opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  else throw std::invalid_argument("device kind must be 'interface', 'hostname' or 'default', got '" + kind + "'");
  opts->threads = static_cast<int>(Int(info, 6));
  auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(Held<c10d::Store>(info, 0, kStore), static_cast<int>(Int(info, 1)), static_cast<int>(Int(info, 2)), opts);
  return Hold<c10d::ProcessGroup>(info.Env(), pg, kGroup);
}
// processGroupNCCL(store, rank, size, timeoutMs): only where the addon was built against a CUDA libtorch with NCCL
AWTY_OP(processGroupNCCL) {
#if AWTY_CUDA
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = Ms(info, 3);
  auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(Held<c10d::Store>(info, 0, kStore), static_cast<int>(Int(info, 1)), static_cast<int>(Int(info, 2)), opts);
  return Hold<c10d::ProcessGroup>(info.Env(), pg, kGroup);
#else
  throw std::runtime_error("this addon was built without NCCL (the linked libtorch has no CUDA); use the gloo backend");
#endif
}

// allreduce(group, tensors[], op, timeoutMs) -> work (in place on each tensor)
AWTY_OP(distAllreduce) {
  auto ts = TList(info, 1);
  c10d::AllreduceOptions o;
  o.reduceOp = Op(Str(info, 2));
  o.timeout = Ms(info, 3);
  return Hold<c10d::Work>(info.Env(), Held<c10d::ProcessGroup>(info, 0, kGroup)->allreduce(ts, o), kWork);
}
// allreduceWithGrad(group, x, timeoutMs) -> y: y = the sum of x over the ranks (a new tensor,
// reduced now), and when x requires grad, y's gradient is summed over the ranks in backward before
// it reaches x (torch.distributed.nn.functional.all_reduce). The gradient's allreduce runs in a hook
// inside libtorch's backward, so every rank must run the same backward; it waits up to timeoutMs.
AWTY_OP(distAllreduceWithGrad) {
  c10::intrusive_ptr<c10d::ProcessGroup> pg = Held<c10d::ProcessGroup>(info, 0, kGroup);
  const at::Tensor& x = T(info, 1);
  auto timeout = Ms(info, 2);
  auto reduce = [pg, timeout](const at::Tensor& t) {
    at::Tensor r = t.detach().clone(at::MemoryFormat::Contiguous);
    std::vector<at::Tensor> v{r};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    o.timeout = timeout;
    pg->allreduce(v, o)->wait();
    return r;
  };
  at::Tensor sum;
  {
    at::NoGradGuard guard;
    sum = reduce(x);
  }
  if (!x.requires_grad() || !at::GradMode::is_enabled()) return W(info.Env(), sum);
  // sum + (x - x) has the value of sum exactly and passes its gradient to x unchanged
  at::Tensor y = sum + (x - x.detach());
  y.register_hook([reduce](const at::Tensor& g) { return reduce(g); });
  return W(info.Env(), y);
}
// broadcast(group, tensors[], rootRank, timeoutMs) -> work
AWTY_OP(distBroadcast) {
  auto ts = TList(info, 1);
  c10d::BroadcastOptions o;
  o.rootRank = Int(info, 2);
  o.timeout = Ms(info, 3);
  return Hold<c10d::Work>(info.Env(), Held<c10d::ProcessGroup>(info, 0, kGroup)->broadcast(ts, o), kWork);
}
// allgather(group, outputs[] (one per rank), input, timeoutMs) -> work
AWTY_OP(distAllgather) {
  std::vector<std::vector<at::Tensor>> out{TList(info, 1)};
  std::vector<at::Tensor> in{T(info, 2)};
  c10d::AllgatherOptions o;
  o.timeout = Ms(info, 3);
  return Hold<c10d::Work>(info.Env(), Held<c10d::ProcessGroup>(info, 0, kGroup)->allgather(out, in, o), kWork);
}
// barrier(group, timeoutMs) -> work
AWTY_OP(distBarrier) {
  c10d::BarrierOptions o;
  o.timeout = Ms(info, 1);
  return Hold<c10d::Work>(info.Env(), Held<c10d::ProcessGroup>(info, 0, kGroup)->barrier(o), kWork);
}
// workWait(work): blocks until the collective finished; throws its error
AWTY_OP(distWorkWait) {
  Held<c10d::Work>(info, 0, kWork)->wait();
  return info.Env().Undefined();
}
AWTY_OP(distWorkIsCompleted) { return Napi::Boolean::New(info.Env(), Held<c10d::Work>(info, 0, kWork)->isCompleted()); }

// distRelease(handle): drops the store, group or work now (a group's threads and sockets close)
AWTY_OP(distRelease) {
  Base(info, 0)->reset();
  return info.Env().Undefined();
}

}  // namespace awty
