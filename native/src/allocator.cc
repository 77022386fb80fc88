// A caching CPU allocator for libtorch. Large blocks (>= 64 KiB) come from mmap and are kept for
// reuse when freed (up to a cap); small ones use libtorch's default. Without it, glibc's heap
// interleaves tensor memory with the small long-lived allocations of the JS engine and fragments:
// a training loop's resident memory grows without bound although every tensor is freed. With it,
// a loop that allocates the same activation sizes every step reuses the same blocks (no page
// faults, flat memory), like PyTorch's CUDA caching allocator does on the GPU.
#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <unordered_map>

#include "common.h"

namespace awty {
namespace {

constexpr size_t kLarge = size_t(1) << 16;
constexpr size_t kPage = 4096;

class CachingCPUAllocator final : public at::Allocator {
 public:
  CachingCPUAllocator() {
    const char* env = std::getenv("AWTY_CPU_CACHE_MB");
    if (env && *env) {
      cap_ = static_cast<size_t>(std::strtoull(env, nullptr, 10)) << 20;
    } else {
      size_t phys = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
      cap_ = std::min(phys / 4, size_t(8) << 30);
    }
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
    std::lock_guard<std::mutex> g(mu_);
    for (auto& [size, p] : free_) munmap(p, size);
    free_.clear();
    cached_ = 0;
  }

  void Stats(size_t* live, size_t* cached) {
    std::lock_guard<std::mutex> g(mu_);
    *live = live_bytes_;
    *cached = cached_;
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
      auto it = free_.find(size);
      if (it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        cached_ -= size;
        live_[p] = size;
        live_bytes_ += size;
        return p;
      }
    }
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      EmptyCache();
      p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    TORCH_CHECK(p != MAP_FAILED, "CPU out of memory: could not allocate ", n, " bytes");
    std::lock_guard<std::mutex> g(mu_);
    live_[p] = size;
    live_bytes_ += size;
    return p;
  }

  static void Free(void* p) {
    if (!p) return;
    Get().Release(p);
  }

  void Release(void* p) {
    size_t size = 0;
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
      if (cached_ + size <= cap_) {
        free_.emplace(size, p);
        cached_ += size;
        return;
      }
    }
    munmap(p, size);
  }

  std::mutex mu_;
  std::unordered_map<void*, size_t> live_;
  std::multimap<size_t, void*> free_;
  size_t live_bytes_ = 0;
  size_t cached_ = 0;
  size_t cap_ = 0;
};

}  // namespace

void InstallAllocator() {
  const char* off = std::getenv("AWTY_CPU_CACHING_ALLOCATOR");
  if (off && std::string(off) == "0") return;
  c10::SetCPUAllocator(&CachingCPUAllocator::Get(), /*priority=*/200);
}

AWTY_OP(cpuMemoryStats) {
  size_t live = 0, cached = 0;
  CachingCPUAllocator::Get().Stats(&live, &cached);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("largeBlocksInUse", Napi::Number::New(info.Env(), static_cast<double>(live)));
  o.Set("cached", Napi::Number::New(info.Env(), static_cast<double>(cached)));
  return o;
}

AWTY_OP(emptyCache) {
  CachingCPUAllocator::Get().EmptyCache();
  return info.Env().Undefined();
}

void InitAllocator(Napi::Env env, Napi::Object exports) {
  InstallAllocator();
  AWTY_EXPORT(exports, cpuMemoryStats);
  AWTY_EXPORT(exports, emptyCache);
}

}  // namespace awty
