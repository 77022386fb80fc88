// A caching CPU allocator for libtorch. Large blocks (>= 64 KiB) come from mmap and are kept for
// reuse when freed; small ones use libtorch's default. Kept memory is a set of address ranges: a
// request takes the smallest kept range that holds it (best fit) and what that range has beyond the
// request stays kept as a range of its own; a freed block merges with the kept ranges beside it in
// the address space. So a step whose phases use different sizes (activations, then gradients, then
// the next layer's outputs in inference) reuses the same memory instead of mapping it afresh, as
// PyTorch's CUDA caching allocator splits and merges blocks within its segments. What it may keep
// is bounded twice: by the cap the caller gives (installAllocator({ capBytes, headroom })), and by
// the high-water mark of the bytes in use: blocks in use + kept never exceed peak + headroom x
// swing, where peak is the most ever in use at once (e.g. one training step's peak) and swing is
// the deepest fall of in use below the peak reached before it (a step's transient memory:
// activations and temporaries, not the parameters and optimiser state that stay in use). With
// headroom 0 caching never raises the process's peak. Scaling it by the swing rather than the
// whole peak keeps a model whose state dominates its memory (a ViT with AdamW) from holding a
// headroom share of that state in cache. Without this allocator, glibc's heap interleaves tensor
// memory with the small long-lived allocations of the JS engine and fragments: a training loop's
// resident memory grows without bound although every tensor is freed.
#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "common.h"

namespace awty {
namespace {

constexpr size_t kLarge = size_t(1) << 16;
constexpr size_t kPage = 4096;

class CachingCPUAllocator final : public at::Allocator {
 public:
  CachingCPUAllocator() = default;

  void SetBounds(size_t cap, double headroom) {
    std::vector<std::pair<size_t, void*>> drop;
    {
      std::lock_guard<std::mutex> g(mu_);
      cap_ = cap;
      headroom_ = headroom;
      Trim(&drop);
    }
    Unmap(drop);
  }

  at::DataPtr allocate(size_t n) const override {
    void* p = const_cast<CachingCPUAllocator*>(this)->Take(n);
    return {p, p, &Free, at::Device(at::DeviceType::CPU)};
  }
  at::DeleterFnPtr raw_deleter() const override { return &Free; }

  static CachingCPUAllocator& Get() {
    static auto* a = new CachingCPUAllocator();  // never destroyed: tensors may outlive static destructors
    return *a;
  }

  void EmptyCache() {
    std::vector<std::pair<size_t, void*>> drop;
    {
      std::lock_guard<std::mutex> g(mu_);
      for (auto& [addr, size] : by_addr_) drop.emplace_back(size, reinterpret_cast<void*>(addr));
      by_addr_.clear();
      by_size_.clear();
      cached_ = 0;
    }
    Unmap(drop);
  }

  struct Snapshot { size_t live, cached, peak, swing, cap, mapped, maps, splits; double headroom; };
  Snapshot Stats() {
    std::lock_guard<std::mutex> g(mu_);
    return {live_bytes_, cached_, peak_live_, swing_, cap_, mapped_peak_, maps_, splits_, headroom_};
  }
  void ResetPeak() {
    std::vector<std::pair<size_t, void*>> drop;
    {
      std::lock_guard<std::mutex> g(mu_);
      peak_live_ = live_bytes_;
      swing_ = 0;
      mapped_peak_ = live_bytes_ + cached_;
      Trim(&drop);
    }
    Unmap(drop);
  }

 private:
  void* Take(size_t n) {
    if (n < kLarge) {
      void* p = nullptr;
      TORCH_CHECK(posix_memalign(&p, 64, n ? n : 1) == 0, "CPU out of memory: could not allocate ", n, " bytes");
      return p;
    }
    size_t size = (n + kPage - 1) / kPage * kPage;
    {
      std::lock_guard<std::mutex> g(mu_);
      // best fit: the smallest kept range that holds the request; what it has beyond the request
      // stays kept, as a range of its own
      auto it = by_size_.lower_bound({size, 0});
      if (it != by_size_.end()) {
        auto [have, addr] = *it;
        RemoveFree(it);
        if (have > size) {
          AddFree(addr + size, have - size);
          ++splits_;
        }
        cached_ -= size;
        void* p = reinterpret_cast<void*>(addr);
        live_[p] = size;
        live_bytes_ += size;
        NotePeak();
        return p;
      }
    }
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      EmptyCache();
      p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    TORCH_CHECK(p != MAP_FAILED, "CPU out of memory: could not allocate ", n, " bytes");
    std::vector<std::pair<size_t, void*>> drop;
    {
      std::lock_guard<std::mutex> g(mu_);
      ++maps_;
      live_[p] = size;
      live_bytes_ += size;
      NotePeak();
      // a miss while smaller ranges sit in the cache: give back kept bytes so that in use + kept
      // stays within the bound
      Trim(&drop);
      mapped_peak_ = std::max(mapped_peak_, live_bytes_ + cached_);
    }
    Unmap(drop);
    return p;
  }

  void NotePeak() { peak_live_ = std::max(peak_live_, live_bytes_); }

  // Kept bytes allowed now: at most the cap, and at most peak + headroom x swing less what is in use.
  size_t Allowed() const {
    size_t bound = peak_live_ + static_cast<size_t>(static_cast<double>(swing_) * headroom_);
    return std::min(cap_, bound - std::min(bound, live_bytes_));
  }

  void AddFree(uintptr_t addr, size_t size) {
    by_addr_.emplace(addr, size);
    by_size_.emplace(size, addr);
  }
  void RemoveFree(std::set<std::pair<size_t, uintptr_t>>::iterator it) {
    by_addr_.erase(it->second);
    by_size_.erase(it);
  }
  void RemoveFreeAt(std::map<uintptr_t, size_t>::iterator it) {
    by_size_.erase({it->second, it->first});
    by_addr_.erase(it);
  }

  // Gives back kept bytes until the cache fits: the largest ranges first, the last one only in part
  // (its tail), so what is kept is as much as the bound allows. The caller unmaps them unlocked.
  void Trim(std::vector<std::pair<size_t, void*>>* drop) {
    size_t allowed = Allowed();
    while (cached_ > allowed && !by_size_.empty()) {
      auto it = std::prev(by_size_.end());
      auto [size, addr] = *it;
      size_t excess = (cached_ - allowed + kPage - 1) / kPage * kPage;
      RemoveFree(it);
      if (excess < size) {
        AddFree(addr, size - excess);
        drop->emplace_back(excess, reinterpret_cast<void*>(addr + size - excess));
        cached_ -= excess;
      } else {
        drop->emplace_back(size, reinterpret_cast<void*>(addr));
        cached_ -= size;
      }
    }
  }
  static void Unmap(const std::vector<std::pair<size_t, void*>>& drop) {
    for (auto& [size, p] : drop) munmap(p, size);
  }

  static void Free(void* p) {
    if (!p) return;
    Get().Release(p);
  }

  void Release(void* p) {
    size_t size = 0;
    std::vector<std::pair<size_t, void*>> drop;
    {
      std::lock_guard<std::mutex> g(mu_);
      auto it = live_.find(p);
      if (it == live_.end()) {
        std::free(p);
        return;
      }
      size = it->second;
      live_.erase(it);
      live_bytes_ -= size;
      swing_ = std::max(swing_, peak_live_ - live_bytes_);
      // kept with its neighbours: address-adjacent kept ranges (from one mapping or from mappings
      // the kernel placed side by side) become one range, so later requests of other sizes fit
      uintptr_t addr = reinterpret_cast<uintptr_t>(p);
      size_t merged = size;
      auto next = by_addr_.find(addr + size);
      if (next != by_addr_.end()) {
        merged += next->second;
        RemoveFreeAt(next);
      }
      auto after = by_addr_.lower_bound(addr);
      if (after != by_addr_.begin()) {
        auto prev = std::prev(after);
        if (prev->first + prev->second == addr) {
          addr = prev->first;
          merged += prev->second;
          RemoveFreeAt(prev);
        }
      }
      AddFree(addr, merged);
      cached_ += size;
      Trim(&drop);
    }
    Unmap(drop);
  }

  std::mutex mu_;
  std::unordered_map<void*, size_t> live_;
  std::map<uintptr_t, size_t> by_addr_;             // kept ranges by address (for merging)
  std::set<std::pair<size_t, uintptr_t>> by_size_;  // the same ranges by size (for best fit)
  size_t live_bytes_ = 0;
  size_t cached_ = 0;
  size_t peak_live_ = 0;
  size_t swing_ = 0;  // the deepest fall of in use below the peak reached before it
  size_t mapped_peak_ = 0;
  size_t cap_ = 0;
  size_t maps_ = 0;    // fresh mappings made (cache misses)
  size_t splits_ = 0;  // requests served from part of a larger kept range
  double headroom_ = 0;
};

}  // namespace

// installAllocator({ capBytes, headroom }): makes the caching allocator libtorch's CPU allocator
// (once per process; a later call only changes the bounds). capBytes: the most bytes kept for reuse;
// headroom: in use + kept stay within peak + headroom x swing (the high-water mark of in use, and the
// deepest fall of in use below the peak before it).
AWTY_OP(installAllocator) {
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "installAllocator: expected { capBytes, headroom }");
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Value v = o.Get("capBytes");
  if (!v.IsNumber() || !(v.As<Napi::Number>().DoubleValue() >= 0)) {
    throw Napi::TypeError::New(info.Env(), "installAllocator: capBytes must be a number >= 0");
  }
  Napi::Value h = o.Get("headroom");
  if (!h.IsNumber() || !(h.As<Napi::Number>().DoubleValue() >= 0) || !std::isfinite(h.As<Napi::Number>().DoubleValue())) {
    throw Napi::TypeError::New(info.Env(), "installAllocator: headroom must be a finite number >= 0");
  }
  double cap = v.As<Napi::Number>().DoubleValue();
  auto& a = CachingCPUAllocator::Get();
  a.SetBounds(cap >= 1.8e19 ? SIZE_MAX : static_cast<size_t>(cap), h.As<Napi::Number>().DoubleValue());
  static std::once_flag once;
  std::call_once(once, [] { c10::SetCPUAllocator(&CachingCPUAllocator::Get(), /*priority=*/200); });
  return info.Env().Undefined();
}

AWTY_OP(cpuMemoryStats) {
  auto s = CachingCPUAllocator::Get().Stats();
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("largeBlocksInUse", Napi::Number::New(env, static_cast<double>(s.live)));
  o.Set("cached", Napi::Number::New(env, static_cast<double>(s.cached)));
  o.Set("peakInUse", Napi::Number::New(env, static_cast<double>(s.peak)));
  o.Set("swing", Napi::Number::New(env, static_cast<double>(s.swing)));
  o.Set("peakMapped", Napi::Number::New(env, static_cast<double>(s.mapped)));
  o.Set("capBytes", Napi::Number::New(env, s.cap == SIZE_MAX ? std::numeric_limits<double>::infinity() : static_cast<double>(s.cap)));
  o.Set("headroom", Napi::Number::New(env, s.headroom));
  o.Set("maps", Napi::Number::New(env, static_cast<double>(s.maps)));
  o.Set("splits", Napi::Number::New(env, static_cast<double>(s.splits)));
  return o;
}

AWTY_OP(resetPeakMemoryStats) {
  CachingCPUAllocator::Get().ResetPeak();
  return info.Env().Undefined();
}

AWTY_OP(emptyCache) {
  CachingCPUAllocator::Get().EmptyCache();
  return info.Env().Undefined();
}

}  // namespace awty
