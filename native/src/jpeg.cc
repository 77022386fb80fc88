// JPEG encoding of interleaved 8-bit RGB frames with the system libjpeg(-turbo), on libuv's pool or,
// when a priority is given (a niceness 1..19, or 20: Linux's idle scheduling class), on the addon's
// own threads running at that priority (so that encodes only take the CPU that ffmpeg's decoder
// leaves idle; libuv's pool threads cannot be given back their priority by an unprivileged process,
// so they are never changed). A frame sink (jpegFrameSink) also reads the frames itself from a pipe
// and writes each JPEG into its episode folder, without the JS thread between decoder and encoder.
// The encoding uses the settings sharp (libvips jpegsave) uses for `.jpeg({ quality })` —
// jpeg_set_quality(q, TRUE), Huffman tables optimised, 4:2:0 chroma, the integer DCT, no JFIF, EXIF
// or ICC markers — without sharp's per-call set-up (its options object, libvips' pipeline and
// worker hand-off). Whether the bytes are sharp's is checked by the TypeScript side
// (src/data/jpeg.ts) before it is used. Built alone as `awty_jpeg.node` (no libtorch), only where libjpeg's headers are found.
#include <napi.h>

#include <condition_variable>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <vector>
#include <mutex>
#include <string>
#include <thread>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

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

/**
 * One frame: encoded, and with `tmp` set also written — created as `tmp`, written whole, renamed to
 * `final` — its descriptor left open for the caller's fsync. Runs off the JS thread.
 */
struct Work {
  const unsigned char* data;
  int width, height, quality;
  std::string tmp, final;
  unsigned char* out = nullptr;
  unsigned long size = 0;
  bool ok = false;
  std::string error;         // an encoding failure
  int sysErrno = 0;          // a file failure: errno, the call and the path
  const char* syscall = "";
  int fd = -1;

  Work() = default;
  Work(Work&&) = default;  // moved before it runs, when `out` is still null
  Work(const Work&) = delete;
  ~Work() { std::free(out); }

  void Run() {
    ok = Encode(data, width, height, quality, &out, &size, &error);
    if (!ok || tmp.empty()) return;
    ok = false;
    int f = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f < 0) return Fail("open");
    for (unsigned long off = 0; off < size;) {
      ssize_t n = ::write(f, out + off, size - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Fail("write", f);
      off += static_cast<unsigned long>(n);
    }
    if (::rename(tmp.c_str(), final.c_str()) != 0) return Fail("rename", f);
    fd = f;
    ok = true;
  }

  /** The result is not wanted (its environment is gone): give back the descriptor and the JPEG. */
  void Drop() {
    if (fd >= 0) ::close(fd);
    fd = -1;
    std::free(out);
    out = nullptr;
  }

  void Fail(const char* call, int f = -1) {
    sysErrno = errno;
    syscall = call;
    if (f >= 0) ::close(f);
  }

  /** Settles `deferred` on the JS thread: the JPEG (or, written, its file's descriptor), or the error. */
  void Settle(Napi::Env env, Napi::Promise::Deferred& deferred) {
    if (ok && !tmp.empty()) {
      deferred.Resolve(Napi::Number::New(env, fd));
    } else if (ok) {
      unsigned char* o = out;
      out = nullptr;
      deferred.Resolve(Napi::Buffer<unsigned char>::New(env, o, size, [](Napi::Env, unsigned char* q) { std::free(q); }));
    } else if (sysErrno != 0) {
      // the TypeScript side makes a Node system error of it (code, message) from these
      Napi::Error e = Napi::Error::New(env, std::string(syscall) + " " + tmp + ": " + std::strerror(sysErrno));
      e.Set("errno", Napi::Number::New(env, sysErrno));
      e.Set("syscall", Napi::String::New(env, syscall));
      e.Set("path", Napi::String::New(env, tmp));
      deferred.Reject(e.Value());
    } else {
      deferred.Reject(Napi::Error::New(env, "JPEG encoding failed: " + error).Value());
    }
  }
};

class EncodeWorker : public Napi::AsyncWorker {
 public:
  EncodeWorker(Napi::Env env, Napi::Buffer<unsigned char> input, Work work)
      : Napi::AsyncWorker(env, "awty.jpegEncodeRgb"), deferred_(Napi::Promise::Deferred::New(env)),
        input_(Napi::Persistent(input)), work_(std::move(work)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { work_.Run(); }

  void OnOK() override { work_.Settle(Env(), deferred_); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Buffer<unsigned char>> input_;
  Work work_;
};

// ---- encodes on the addon's own lowered-priority threads ----

struct Job;
void DeliverJob(Napi::Env env, Napi::Function, void*, Job* job);
using Delivery = Napi::TypedThreadSafeFunction<void, Job, DeliverJob>;

/** Per Node environment: the channel finished jobs come back on, referenced while jobs are pending. */
struct EnvState {
  Delivery delivery;
  size_t pending = 0;
};

struct Job {
  Job(Napi::Env env, Napi::Buffer<unsigned char> in, Work w, EnvState* s)
      : deferred(Napi::Promise::Deferred::New(env)), input(Napi::Persistent(in)), work(std::move(w)), state(s) {}
  Napi::Promise::Deferred deferred;
  Napi::Reference<Napi::Buffer<unsigned char>> input;
  Work work;
  EnvState* state;
};

/** The calling thread at `priority`: a niceness 0..19, or IDLE_PRIORITY for the idle scheduling class. */
constexpr int IDLE_PRIORITY = 20;
void SetThreadPriority(int priority) {
  if (priority >= IDLE_PRIORITY) {
    // SCHED_IDLE: runs only on CPU time no other thread wants, and a waking thread of another class
    // preempts it at once and treats its CPU as idle when it is placed (a high niceness does neither)
    sched_param sp{};
    sched_setscheduler(0, SCHED_IDLE, &sp);
  } else if (priority > 0) {
    // Linux: a thread id given to setpriority sets that thread only
    setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), priority);
  }
}

/** Threads at one priority, shared by every environment of the process; they live as long as it. */
class NicePool {
 public:
  explicit NicePool(int nice) {
    unsigned n = std::thread::hardware_concurrency();
    if (n == 0) n = 1;
    for (unsigned i = 0; i < n; i++) std::thread([this, nice] { Run(nice); }).detach();
  }

  void Submit(Job* job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(job);
    }
    ready_.notify_one();
  }

 private:
  void Run(int nice) {
    SetThreadPriority(nice);
    for (;;) {
      Job* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return !queue_.empty(); });
        job = queue_.front();
        queue_.pop_front();
      }
      job->work.Run();
      // the environment is gone: nothing waits for the result, and its JS handles cannot be touched
      if (job->state->delivery.NonBlockingCall(job) != napi_ok) job->work.Drop();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Job*> queue_;
};

NicePool* PoolFor(int nice) {
  static std::mutex mutex;
  static auto* pools = new std::map<int, NicePool*>();
  std::lock_guard<std::mutex> lock(mutex);
  auto it = pools->find(nice);
  if (it != pools->end()) return it->second;
  auto* pool = new NicePool(nice);
  (*pools)[nice] = pool;
  return pool;
}

void DeliverJob(Napi::Env env, Napi::Function, void*, Job* job) {
  if (env == nullptr) {  // the channel is being torn down with the environment
    job->work.Drop();
    return;
  }
  job->work.Settle(env, job->deferred);
  EnvState* state = job->state;
  delete job;
  if (--state->pending == 0) state->delivery.Unref(env);
}

void KeepState(Napi::Env, EnvState*) {}

EnvState* StateOf(Napi::Env env) {
  auto* state = env.GetInstanceData<EnvState>();
  if (state) return state;
  state = new EnvState();
  state->delivery = Delivery::New(env, "awty.jpegEncodeRgb", 0, 1);
  state->delivery.Unref(env);
  // kept past the environment's end: a job still encoding then points at it (its delivery fails and it is dropped)
  env.SetInstanceData<EnvState, KeepState>(state);
  return state;
}

/** Queues `work` (nice 0: libuv's pool; else the pool at that niceness); the promise settles with Work::Settle. */
Napi::Promise Queue(Napi::Env env, Napi::Buffer<unsigned char> input, Work work, int nice) {
  if (nice > 0) {
    EnvState* state = StateOf(env);
    auto* job = new Job(env, input, std::move(work), state);
    Napi::Promise p = job->deferred.Promise();
    if (state->pending++ == 0) state->delivery.Ref(env);
    PoolFor(nice)->Submit(job);
    return p;
  }
  auto* worker = new EncodeWorker(env, input, std::move(work));
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

/** The checked arguments rgb, width, height, quality[, nice] as a Work (and the niceness). */
Work Arguments(const Napi::CallbackInfo& info, const char* usage, size_t count, int* nice) {
  Napi::Env env = info.Env();
  if (info.Length() < count || !info[0].IsBuffer() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber()) {
    throw Napi::TypeError::New(env, usage);
  }
  auto input = info[0].As<Napi::Buffer<unsigned char>>();
  Work w;
  w.data = input.Data();
  w.width = info[1].As<Napi::Number>().Int32Value();
  w.height = info[2].As<Napi::Number>().Int32Value();
  w.quality = info[3].As<Napi::Number>().Int32Value();
  if (w.width <= 0 || w.height <= 0 || w.width > 65500 || w.height > 65500) throw Napi::RangeError::New(env, "jpegEncodeRgb: bad image size");
  if (w.quality < 1 || w.quality > 100) throw Napi::RangeError::New(env, "jpegEncodeRgb: quality must be 1..100");
  if (input.Length() != static_cast<size_t>(w.width) * static_cast<size_t>(w.height) * 3) {
    throw Napi::RangeError::New(env, "jpegEncodeRgb: the buffer is not width x height x 3 bytes");
  }
  *nice = info.Length() > 4 && info[4].IsNumber() ? info[4].As<Napi::Number>().Int32Value() : 0;
  if (*nice < 0 || *nice > IDLE_PRIORITY) throw Napi::RangeError::New(env, "jpegEncodeRgb: nice must be 0..20 (20: the idle class)");
  return w;
}

/** jpegEncodeRgb(rgb: Buffer, width, height, quality, nice = 0): Promise<Buffer>; the input must stay unchanged until it settles. */
Napi::Value JpegEncodeRgb(const Napi::CallbackInfo& info) {
  int nice = 0;
  Work w = Arguments(info, "jpegEncodeRgb(rgb: Buffer, width: number, height: number, quality: number, nice?: number)", 4, &nice);
  return Queue(info.Env(), info[0].As<Napi::Buffer<unsigned char>>(), std::move(w), nice);
}

/**
 * jpegEncodeRgbToFile(rgb, width, height, quality, nice, tmp, final): Promise<number>: encodes, creates
 * `tmp`, writes the JPEG, renames it to `final` and resolves with the open descriptor (the caller fsyncs
 * and closes it); a file error rejects with errno, syscall and path set.
 */
Napi::Value JpegEncodeRgbToFile(const Napi::CallbackInfo& info) {
  const char* usage = "jpegEncodeRgbToFile(rgb: Buffer, width: number, height: number, quality: number, nice: number, tmp: string, final: string)";
  int nice = 0;
  Work w = Arguments(info, usage, 7, &nice);
  if (!info[5].IsString() || !info[6].IsString()) throw Napi::TypeError::New(info.Env(), usage);
  w.tmp = info[5].As<Napi::String>().Utf8Value();
  w.final = info[6].As<Napi::String>().Utf8Value();
  if (w.tmp.empty() || w.final.empty()) throw Napi::TypeError::New(info.Env(), usage);
  return Queue(info.Env(), info[0].As<Napi::Buffer<unsigned char>>(), std::move(w), nice);
}


// ---- the frame sink: frames read from a pipe, encoded and written on the addon's threads ----

/** framePipe(): [readFd, writeFd], both close-on-exec, the pipe enlarged to 1 MiB where allowed. */
Napi::Value FramePipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    Napi::Error e = Napi::Error::New(env, std::string("pipe: ") + std::strerror(errno));
    e.Set("errno", Napi::Number::New(env, errno));
    throw e;
  }
  // a decoder can then write several whole frames without waiting for the reader; refused (EPERM:
  // the user's pipe memory is used up) it keeps the default size, which only costs speed
  ::fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, fds[0]));
  out.Set(1u, Napi::Number::New(env, fds[1]));
  return out;
}

/**
 * One video's frames: each thread takes the next whole frame from the pipe (reads are serialised, so
 * frame k of the stream is the k-th read), encodes it and writes `<dir>/class_NNNN/img_NNNN.jpeg` for
 * global frame startFrame + k (temporary name, rename; the names of src/data/names.ts), fsyncing its
 * files in batches of 64 and at the end. The first failure stops every thread.
 */
struct Sink {
  int fd;
  int width, height, quality;
  size_t frameBytes;
  std::string dir;
  long long startFrame, perEpisode;
  Napi::ThreadSafeFunction events;

  std::mutex readMutex;    // held by the thread reading (also while it waits for the pipe)
  bool eof = false;        // under readMutex
  // whole frames read, and the bytes of a frame the stream ended inside: written under readMutex,
  // read without it (the JS thread must never wait for a thread that waits for the pipe)
  std::atomic<long long> read{0};
  std::atomic<size_t> partial{0};

  std::atomic<long long> written{0};
  std::atomic<bool> stop{false};
  std::atomic<bool> notified{false};
  std::atomic<long long> nextNotify{0};  // NowMs() after which progress is told again
  std::atomic<long long> consumed{0};    // bytes taken from the pipe so far
  std::atomic<bool> ended{false};        // the stream's end was read
  // the idle-class threads were starved (other processes keep every core busy): they give way to
  // threads at kFallbackNice, started by the watchdog
  std::atomic<bool> demoted{false};
  int threads = 0;

  std::mutex mutex;        // the rest
  std::condition_variable left;  // a reader left (the watchdog stops waiting)
  std::set<long long> dirs;
  bool failed = false;
  std::string error;       // a failure without an errno (encoding)
  int sysErrno = 0;
  std::string syscall, path;
  int running = 0;

  void Fail(int err, const char* call, const std::string& p, const std::string& message = "") {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (!failed) {
        failed = true;
        sysErrno = err;
        syscall = call;
        path = p;
        error = message;
      }
    }
    stop = true;
  }

  /** `<dir>/class_NNNN` of global frame g, made once; 0 or mkdir's errno. */
  int EpisodeDir(long long g, std::string* out) {
    char name[64];
    std::snprintf(name, sizeof name, "/class_%04lld", g / perEpisode);
    *out = dir + name;
    std::lock_guard<std::mutex> lock(mutex);
    if (dirs.count(g / perEpisode)) return 0;
    if (::mkdir(out->c_str(), 0777) != 0 && errno != EEXIST) return errno;
    dirs.insert(g / perEpisode);
    return 0;
  }
};

/** Fsyncs and closes `fds` (each is closed whatever happens); false with the sink failed on an error. */
bool SyncAll(Sink* s, std::vector<int>* fds, bool sync) {
  bool ok = true;
  for (int f : *fds) {
    if (sync && ok && ::fsync(f) != 0) {
      s->Fail(errno, "fsync", s->dir);
      ok = false;
    }
    ::close(f);
  }
  fds->clear();
  return ok;
}

void NotifySink(const std::shared_ptr<Sink>& s, bool done);

long long NowMs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<long long>(t.tv_sec) * 1000 + t.tv_nsec / 1000000;
}
/** Progress is told at most this often: each event wakes the JS thread, which competes with the decoder. */
constexpr long long kNotifyMs = 50;

void LeaveSink(const std::shared_ptr<Sink>& s);

void SinkThread(std::shared_ptr<Sink> s, int priority) {
  SetThreadPriority(priority);
  std::vector<unsigned char> buf(s->frameBytes);
  std::vector<int> fds;
  while (!s->stop && !(priority == IDLE_PRIORITY && s->demoted)) {
    long long k;
    {
      std::lock_guard<std::mutex> lock(s->readMutex);
      if (s->eof) break;
      size_t got = 0;
      while (got < s->frameBytes) {
        ssize_t n = ::read(s->fd, buf.data() + got, s->frameBytes - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          s->Fail(errno, "read", "the decoder's pipe");
          break;
        }
        if (n == 0) break;
        got += static_cast<size_t>(n);
        s->consumed += n;
      }
      if (got < s->frameBytes) {
        s->eof = true;
        s->partial = got;
        s->ended = true;
        break;
      }
      k = s->read.fetch_add(1);
    }
    const long long g = s->startFrame + k;
    Work w;
    w.data = buf.data();
    w.width = s->width;
    w.height = s->height;
    w.quality = s->quality;
    std::string episode;
    if (int err = s->EpisodeDir(g, &episode)) {
      s->Fail(err, "mkdir", episode);
      break;
    }
    char name[64];
    std::snprintf(name, sizeof name, "/img_%04lld.jpeg", g % s->perEpisode);
    w.final = episode + name;
    std::snprintf(name, sizeof name, "/.img_%04lld.jpeg.tmp", g % s->perEpisode);
    w.tmp = episode + name;
    w.Run();
    if (!w.ok) {
      if (w.sysErrno != 0) s->Fail(w.sysErrno, w.syscall, w.tmp);
      else s->Fail(0, "", "", "JPEG encoding failed: " + w.error);
      break;
    }
    fds.push_back(w.fd);
    if (fds.size() >= 64 && !SyncAll(s.get(), &fds, true)) break;
    s->written++;
    const long long now = NowMs();
    long long due = s->nextNotify.load();
    if (now >= due && s->nextNotify.compare_exchange_strong(due, now + kNotifyMs) && !s->notified.exchange(true)) NotifySink(s, false);
  }
  SyncAll(s.get(), &fds, !s->stop);
  LeaveSink(s);
}

/**
 * A reader, the watchdog included, is done: a failure is told at once (so that the decoder is
 * stopped and the other threads' reads end), and the last one out closes the pipe, tells the end
 * and releases the channel (events are only sent while their sender still counts as running).
 */
void LeaveSink(const std::shared_ptr<Sink>& s) {
  if (s->stop && !s->notified.exchange(true)) NotifySink(s, false);
  bool last;
  {
    std::lock_guard<std::mutex> lock(s->mutex);
    last = --s->running == 0;
  }
  s->left.notify_all();
  if (!last) return;
  ::close(s->fd);
  NotifySink(s, true);
  s->events.Release();
}

/** Niceness of the threads that take over from starved idle-class ones. */
constexpr int kFallbackNice = 10;

/**
 * With the threads in the idle class: every 50 ms, whether frame bytes have waited in the pipe for
 * 250 ms with nothing taken (an idle-class thread only runs on CPU time nobody else wants, so under
 * other processes keeping every core busy it can all but stop); if so, `threads` threads at
 * kFallbackNice take over and the idle-class ones leave after their frame.
 */
void SinkWatchdog(std::shared_ptr<Sink> s) {
  long long seen = -1;
  int still = 0;
  for (;;) {
    {
      // until 50 ms have passed, or there is nothing left to watch (the readers gone: the last one
      // out must not wait for this thread to close the pipe)
      std::unique_lock<std::mutex> lock(s->mutex);
      const auto over = [&s] { return s->stop || s->ended || s->running == 1; };
      if (s->left.wait_for(lock, std::chrono::milliseconds(50), over) || over()) break;
    }
    const long long c = s->consumed.load();
    int waiting = 0;
    if (::ioctl(s->fd, FIONREAD, &waiting) != 0) waiting = 0;
    still = c == seen && waiting > 0 ? still + 1 : 0;
    seen = c;
    if (still >= 5) {
      {
        std::lock_guard<std::mutex> lock(s->mutex);
        s->running += s->threads;  // while this thread still counts, so the count cannot reach 0 first
      }
      s->demoted = true;
      for (int i = 0; i < s->threads; i++) std::thread(SinkThread, s, kFallbackNice).detach();
      break;
    }
  }
  LeaveSink(s);
}

/** An event for the JS thread: the counts, and whether the sink is done (and how). */
struct SinkEvent {
  std::shared_ptr<Sink> sink;
  bool done;
};

void NotifySink(const std::shared_ptr<Sink>& s, bool done) {
  auto* ev = new SinkEvent{s, done};
  auto deliver = [](Napi::Env env, Napi::Function callback, SinkEvent* e) {
    std::unique_ptr<SinkEvent> owned(e);
    if (env == nullptr) return;  // the environment is going away: nobody waits
    Sink* s = e->sink.get();
    if (!e->done) s->notified = false;
    const long long read = s->read.load();
    const size_t partial = s->partial.load();
    Napi::Value error = env.Null();
    {
      std::lock_guard<std::mutex> lock(s->mutex);
      if (s->failed && s->sysErrno != 0) {
        Napi::Error err = Napi::Error::New(env, s->syscall + " " + s->path + ": " + std::strerror(s->sysErrno));
        err.Set("errno", Napi::Number::New(env, s->sysErrno));
        err.Set("syscall", Napi::String::New(env, s->syscall));
        err.Set("path", Napi::String::New(env, s->path));
        error = err.Value();
      } else if (s->failed) {
        error = Napi::Error::New(env, s->error).Value();
      }
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("read", Napi::Number::New(env, static_cast<double>(read)));
    out.Set("written", Napi::Number::New(env, static_cast<double>(s->written.load())));
    out.Set("partial", Napi::Number::New(env, static_cast<double>(partial)));
    out.Set("done", Napi::Boolean::New(env, e->done));
    out.Set("fallback", Napi::Boolean::New(env, s->demoted.load()));
    out.Set("error", error);
    Napi::Value stop = callback.Call({out});
    // the callback returns true to stop the sink (cancelled): the threads stop after their frame
    if (stop.IsBoolean() && stop.As<Napi::Boolean>().Value()) s->stop = true;
  };
  if (s->events.NonBlockingCall(ev, deliver) != napi_ok) delete ev;
}

/**
 * jpegFrameSink(fd, width, height, quality, priority, threads, dir, startFrame, perEpisode, onEvent):
 * starts `threads` threads at `priority` (0..19 a niceness, 20 the idle class) reading width x
 * height x 3 RGB frames from `fd` (closed when they are done) until its end, as Sink describes.
 * In the idle class a watchdog hands the work to threads at kFallbackNice when they starve.
 * onEvent({ read, written, partial, done, fallback, error }) is called on the JS thread as frames are written
 * (coalesced) and once with done: true after every file is fsynced and closed; returning true stops it.
 */
Napi::Value JpegFrameSink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "jpegFrameSink(fd, width, height, quality, priority, threads, dir, startFrame, perEpisode, onEvent)";
  if (info.Length() < 10 || !info[6].IsString() || !info[9].IsFunction()) throw Napi::TypeError::New(env, usage);
  for (size_t i : {0, 1, 2, 3, 4, 5, 7, 8}) {
    if (!info[i].IsNumber()) throw Napi::TypeError::New(env, usage);
  }
  auto s = std::make_shared<Sink>();
  s->fd = info[0].As<Napi::Number>().Int32Value();
  s->width = info[1].As<Napi::Number>().Int32Value();
  s->height = info[2].As<Napi::Number>().Int32Value();
  s->quality = info[3].As<Napi::Number>().Int32Value();
  const int priority = info[4].As<Napi::Number>().Int32Value();
  const int threads = info[5].As<Napi::Number>().Int32Value();
  s->dir = info[6].As<Napi::String>().Utf8Value();
  s->startFrame = info[7].As<Napi::Number>().Int64Value();
  s->perEpisode = info[8].As<Napi::Number>().Int64Value();
  if (s->fd < 0) throw Napi::RangeError::New(env, "jpegFrameSink: bad descriptor");
  if (s->width <= 0 || s->height <= 0 || s->width > 65500 || s->height > 65500) throw Napi::RangeError::New(env, "jpegFrameSink: bad image size");
  if (s->quality < 1 || s->quality > 100) throw Napi::RangeError::New(env, "jpegFrameSink: quality must be 1..100");
  if (priority < 0 || priority > IDLE_PRIORITY) throw Napi::RangeError::New(env, "jpegFrameSink: priority must be 0..20 (20: the idle class)");
  if (threads < 1 || threads > 256) throw Napi::RangeError::New(env, "jpegFrameSink: threads must be 1..256");
  if (s->dir.empty() || s->startFrame < 0 || s->perEpisode < 1) throw Napi::RangeError::New(env, usage);
  s->frameBytes = static_cast<size_t>(s->width) * static_cast<size_t>(s->height) * 3;
  s->events = Napi::ThreadSafeFunction::New(env, info[9].As<Napi::Function>(), "awty.jpegFrameSink", 0, 1);
  s->threads = threads;
  s->running = threads + (priority == IDLE_PRIORITY ? 1 : 0);
  for (int i = 0; i < threads; i++) std::thread(SinkThread, s, priority).detach();
  if (priority == IDLE_PRIORITY) std::thread(SinkWatchdog, s).detach();
  return env.Undefined();
}

}  // namespace

static Napi::Object InitJpegModule(Napi::Env env, Napi::Object exports) {
  exports.Set("jpegEncodeRgb", Napi::Function::New(env, JpegEncodeRgb, "jpegEncodeRgb"));
  exports.Set("jpegEncodeRgbToFile", Napi::Function::New(env, JpegEncodeRgbToFile, "jpegEncodeRgbToFile"));
  exports.Set("jpegFrameSink", Napi::Function::New(env, JpegFrameSink, "jpegFrameSink"));
  exports.Set("framePipe", Napi::Function::New(env, FramePipe, "framePipe"));
  exports.Set("libjpegVersion", Napi::Number::New(env, JPEG_LIB_VERSION));
  return exports;
}
NODE_API_MODULE(awty_jpeg, InitJpegModule)
