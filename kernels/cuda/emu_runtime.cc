// The emulator's scheduler: runs every block of a launch as a set of fibers
// (one per CUDA thread) and resolves barriers and warp operations. See
// emu.h for the semantics it enforces.
#include <ucontext.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "emu.h"
#include "emu_bridge.h"

#if defined(__SANITIZE_THREAD__)
#define EMU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EMU_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN 1
#endif

// The scheduler's own bookkeeping (current fiber, states, shuffle values)
// is handed between fibers by the switches themselves; the race detector
// must see only the kernels' memory accesses, so the runtime's functions
// are not instrumented.
#ifdef EMU_TSAN
#define EMU_RUNTIME __attribute__((no_sanitize("thread")))
#else
#define EMU_RUNTIME
#endif

#ifdef EMU_TSAN
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
}
#endif
#ifdef EMU_ASAN
extern "C" {
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old, size_t* size_old);
}
#endif

// Fibers switch with a few instructions of assembly on x86-64 (ucontext's
// swapcontext makes a system call per switch, which dominates emulation
// time). Sanitizer builds and other architectures use ucontext, which the
// sanitizers understand.
#if defined(__x86_64__) && !defined(EMU_ASAN) && !defined(EMU_TSAN)
#define EMU_ASM_SWITCH 1
extern "C" void emu_ctx_switch(void** save_sp, void* load_sp);
asm(R"(
.pushsection .text
.globl emu_ctx_switch
.type emu_ctx_switch,@function
emu_ctx_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size emu_ctx_switch,.-emu_ctx_switch
.popsection
)");
#endif

namespace emu {

const Kernel* find_kernel(const char* name);

namespace {

#if defined(EMU_ASAN) || defined(EMU_TSAN)
constexpr size_t kStackBytes = 512 << 10;
#else
constexpr size_t kStackBytes = 128 << 10;
#endif

enum State { Run, AtBarrier, AtWarp, Done, Failed };

}  // namespace

struct Thread {
#ifdef EMU_ASM_SWITCH
  void* sp = nullptr;
#else
  ucontext_t ctx;
#endif
  uint3 tid;
  unsigned linear = 0;
  State state = Run;
  const char* file = nullptr;
  int line = 0;
  Op op = OpSyncWarp;
  unsigned mask = 0;
  uint64_t val = 0, result = 0;
  int arg = 0, width = 32;
  char* stack = nullptr;
#ifdef EMU_TSAN
  void* fiber = nullptr;
#endif
#ifdef EMU_ASAN
  void* fake = nullptr;
#endif
};

// ThreadSpan is the threads of the block being run: a prefix of the
// worker's thread slots, which only grow so that fibers and stacks are
// reused from launch to launch.
struct ThreadSpan {
  Thread* p = nullptr;
  size_t n = 0;
  size_t size() const { return n; }
  Thread& operator[](size_t i) const { return p[i]; }
  Thread* begin() const { return p; }
  Thread* end() const { return p + n; }
};

struct Block {
  uint3 bid;
  dim3 bdim, gdim;
  ThreadSpan* threads = nullptr;
#ifdef EMU_ASM_SWITCH
  void* sched_sp = nullptr;
#else
  ucontext_t sched;
#endif
  char* dyn = nullptr;
  const Kernel* kernel = nullptr;
  const uint64_t* args = nullptr;
  std::string err;
  // Addresses the race detector uses as synchronisation objects.
  char barrier_obj = 0;
  char warp_obj[32] = {};
#ifdef EMU_TSAN
  void* sched_fiber = nullptr;
#endif
#ifdef EMU_ASAN
  void* sched_fake = nullptr;
  const void* sched_bottom = nullptr;
  size_t sched_size = 0;
#endif
};

thread_local Thread* cur = nullptr;
thread_local Block* cur_block = nullptr;

EMU_RUNTIME const uint3& thread_idx() { return cur->tid; }
EMU_RUNTIME const uint3& block_idx() { return cur_block->bid; }
EMU_RUNTIME const dim3& block_dim() { return cur_block->bdim; }
EMU_RUNTIME const dim3& grid_dim() { return cur_block->gdim; }
EMU_RUNTIME void* dyn_shared() { return cur_block->dyn; }
EMU_RUNTIME unsigned lane_id() { return cur->linear % 32; }

namespace {

// to_scheduler suspends the calling fiber.
EMU_RUNTIME void to_scheduler() {
  Thread* t = cur;
  Block* b = cur_block;
#ifdef EMU_TSAN
  __tsan_switch_to_fiber(b->sched_fiber, 1);
#endif
#ifdef EMU_ASAN
  __sanitizer_start_switch_fiber(t->state == Done || t->state == Failed ? nullptr : &t->fake, b->sched_bottom,
                                 b->sched_size);
#endif
#ifdef EMU_ASM_SWITCH
  emu_ctx_switch(&t->sp, b->sched_sp);
#else
  swapcontext(&t->ctx, &b->sched);
#endif
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(t->fake, nullptr, nullptr);
#endif
}

EMU_RUNTIME void fiber_main() {
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &cur_block->sched_bottom, &cur_block->sched_size);
#endif
#ifdef EMU_TSAN
  __tsan_acquire(&cur_block->barrier_obj);
#endif
  cur_block->kernel->call(cur_block->args);
#ifdef EMU_TSAN
  __tsan_release(&cur_block->barrier_obj);
#endif
  cur->state = Done;
  to_scheduler();
}

// init_fiber prepares t to start in fiber_main on its own stack.
EMU_RUNTIME void init_fiber(Thread& t) {
#ifdef EMU_ASM_SWITCH
  // The frame emu_ctx_switch pops: control word slot, r15..rbp, then the
  // return address (fiber_main) and a null return address for it, so
  // fiber_main starts with the stack alignment of a called function.
  auto top = reinterpret_cast<uintptr_t>(t.stack + kStackBytes) & ~uintptr_t(15);
  auto* sp = reinterpret_cast<uint64_t*>(top);
  *--sp = 0;
  *--sp = reinterpret_cast<uint64_t>(&fiber_main);
  for (int i = 0; i < 6; i++) *--sp = 0;
  *--sp = uint64_t(0x037F) << 32 | 0x1F80;  // x87 control word, MXCSR defaults
  t.sp = sp;
#else
  getcontext(&t.ctx);
  t.ctx.uc_stack.ss_sp = t.stack;
  t.ctx.uc_stack.ss_size = kStackBytes;
  t.ctx.uc_link = nullptr;
  makecontext(&t.ctx, fiber_main, 0);
#endif
}

EMU_RUNTIME void run_fiber(Block& b, Thread& t) {
  cur = &t;
#ifdef EMU_TSAN
  __tsan_switch_to_fiber(t.fiber, 1);
#endif
#ifdef EMU_ASAN
  __sanitizer_start_switch_fiber(&b.sched_fake, t.stack, kStackBytes);
#endif
#ifdef EMU_ASM_SWITCH
  emu_ctx_switch(&b.sched_sp, t.sp);
#else
  swapcontext(&b.sched, &t.ctx);
#endif
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(b.sched_fake, nullptr, nullptr);
#endif
  cur = nullptr;
}

std::string where(const Thread& t) {
  switch (t.state) {
    case Done:
      return "has exited";
    case AtBarrier:
      return std::string("waits at __syncthreads ") + t.file + ":" + std::to_string(t.line);
    case AtWarp: {
      char m[16];
      std::snprintf(m, sizeof m, "%08x", t.mask);
      return std::string("waits at a warp operation with mask 0x") + m + " at " + t.file + ":" +
             std::to_string(t.line);
    }
    default:
      return "runs";
  }
}

std::string block_name(const Block& b) {
  return std::string("kernel ") + b.kernel->name + " block (" + std::to_string(b.bid.x) + "," +
         std::to_string(b.bid.y) + "," + std::to_string(b.bid.z) + ")";
}

std::string thread_name(const Thread& t) {
  return "thread (" + std::to_string(t.tid.x) + "," + std::to_string(t.tid.y) + "," + std::to_string(t.tid.z) + ")";
}

// deadlock describes why no fiber of the block can make progress.
std::string deadlock(const Block& b, const char* why) {
  std::string s = "deadlock in " + block_name(b) + ": " + why;
  const auto& th = *b.threads;
  int shown = 0;
  for (size_t i = 0; i < th.size() && shown < 4; i++) {
    bool differs = i == 0 || th[i].state != th[i - 1].state || th[i].line != th[i - 1].line;
    if (!differs) continue;
    s += "; " + thread_name(th[i]) + " " + where(th[i]);
    shown++;
  }
  return s;
}

constexpr uint64_t kPoison = ~uint64_t(0);

// resolve_warps completes every warp operation whose mask lanes have all
// arrived at it. It returns the number of groups completed, or −1 with
// b.err set when a mask is malformed.
EMU_RUNTIME int resolve_warps(Block& b) {
  auto& th = *b.threads;
  const unsigned n = unsigned(th.size());
  int released = 0;
  for (unsigned w0 = 0; w0 < n; w0 += 32) {
    for (unsigned l = 0; l < 32 && w0 + l < n; l++) {
      Thread& t = th[w0 + l];
      if (t.state != AtWarp) continue;
      const unsigned m = t.mask;
      if (!(m >> l & 1)) {
        b.err = block_name(b) + ": " + thread_name(t) + " calls a warp operation at " + t.file + ":" +
                std::to_string(t.line) + " with a mask that excludes its own lane";
        return -1;
      }
      if (t.width <= 0 || t.width > 32 || (t.width & (t.width - 1)) != 0) {
        b.err = block_name(b) + ": shuffle width " + std::to_string(t.width) + " at " + t.file + ":" +
                std::to_string(t.line) + " is not a power of two up to 32";
        return -1;
      }
      bool complete = true;
      for (unsigned k = 0; k < 32; k++) {
        if (!(m >> k & 1)) continue;
        if (w0 + k >= n) {
          b.err = block_name(b) + ": warp operation at " + t.file + ":" + std::to_string(t.line) +
                  " names lane " + std::to_string(k) + ", which does not exist in a block of " +
                  std::to_string(n) + " threads";
          return -1;
        }
        const Thread& o = th[w0 + k];
        if (o.state != AtWarp || o.mask != m || o.line != t.line || o.file != t.file) {
          complete = false;
          break;
        }
      }
      if (!complete) continue;
      for (unsigned k = 0; k < 32; k++) {
        if (!(m >> k & 1)) continue;
        Thread& o = th[w0 + k];
        uint64_t r = 0;
        const unsigned width = unsigned(o.width);
        const unsigned seg = k / width * width;
        auto from = [&](unsigned src) -> uint64_t { return (m >> src & 1) ? th[w0 + src].val : kPoison; };
        switch (o.op) {
          case OpShflIdx:
            r = from(seg + unsigned(((o.arg % int(width)) + int(width)) % int(width)));
            break;
          case OpShflUp:
            r = (o.arg >= 0 && k - seg >= unsigned(o.arg)) ? from(k - unsigned(o.arg)) : o.val;
            break;
          case OpShflDown:
            r = (o.arg >= 0 && k - seg + unsigned(o.arg) < width) ? from(k + unsigned(o.arg)) : o.val;
            break;
          case OpShflXor: {
            const unsigned src = k ^ unsigned(o.arg);
            r = (src < 32 && src / width == k / width) ? from(src) : o.val;
            break;
          }
          case OpBallot:
          case OpAll:
          case OpAny: {
            unsigned bits = 0;
            for (unsigned j = 0; j < 32; j++)
              if ((m >> j & 1) && th[w0 + j].val) bits |= 1u << j;
            r = o.op == OpBallot ? bits : o.op == OpAll ? (bits == m) : (bits != 0);
            break;
          }
          case OpSyncWarp:
            break;
        }
        o.result = r;
      }
      for (unsigned k = 0; k < 32; k++)
        if (m >> k & 1) th[w0 + k].state = Run;
      released++;
    }
  }
  return released;
}

// run_block runs one block to completion; it returns false with b.err set
// on a deadlock or a failure inside the kernel.
EMU_RUNTIME bool run_block(Block& b) {
  auto& th = *b.threads;
  const unsigned n = unsigned(th.size());
  unsigned i = 0;
  for (unsigned z = 0; z < b.bdim.z; z++)
    for (unsigned y = 0; y < b.bdim.y; y++)
      for (unsigned x = 0; x < b.bdim.x; x++, i++) {
        Thread& t = th[i];
        t.tid = uint3{x, y, z};
        t.linear = i;
        t.state = Run;
        init_fiber(t);
      }
  cur_block = &b;
#ifdef EMU_TSAN
  b.sched_fiber = __tsan_get_current_fiber();
  __tsan_release(&b.barrier_obj);
#endif
  bool ok = true;
  for (;;) {
    for (unsigned k = 0; k < n; k++) {
      if (th[k].state != Run) continue;
      run_fiber(b, th[k]);
      if (th[k].state == Failed) {
        ok = false;
        goto out;
      }
    }
    unsigned done = 0, barrier = 0;
    for (const Thread& t : th) {
      done += t.state == Done;
      barrier += t.state == AtBarrier;
    }
    if (done == n) break;
    const int rel = resolve_warps(b);
    if (rel < 0) {
      ok = false;
      break;
    }
    if (rel > 0) continue;
    if (barrier == n) {
      const Thread& t0 = th[0];
      for (const Thread& t : th) {
        if (t.line != t0.line || t.file != t0.file) {
          b.err = deadlock(b, "threads wait at different __syncthreads");
          ok = false;
          goto out;
        }
      }
      for (Thread& t : th) t.state = Run;
      continue;
    }
    b.err = deadlock(b, barrier > 0 && done > 0 ? "__syncthreads not reached by exited threads"
                                                : "no thread can make progress");
    ok = false;
    break;
  }
out:
#ifdef EMU_TSAN
  __tsan_acquire(&b.barrier_obj);
#endif
  cur_block = nullptr;
  return ok;
}

// Per worker state, reused across launches.
struct Worker {
  std::vector<Thread> threads;
  ThreadSpan span;
  std::vector<char> dyn;
  ~Worker() {
    for (Thread& t : threads) {
      std::free(t.stack);
#ifdef EMU_TSAN
      __tsan_destroy_fiber(t.fiber);
#endif
    }
  }
  EMU_RUNTIME void prepare(unsigned n, size_t shared) {
    if (threads.size() < n) {
      const size_t old = threads.size();
      threads.resize(n);
      for (size_t i = old; i < n; i++) {
        threads[i].stack = static_cast<char*>(std::malloc(kStackBytes));
#ifdef EMU_TSAN
        threads[i].fiber = __tsan_create_fiber(0);
#endif
      }
    }
    span = ThreadSpan{threads.data(), n};
    if (dyn.size() < std::max<size_t>(shared, 1)) dyn.resize(std::max<size_t>(shared, 1));
  }
};

std::mutex launch_mu;
int workers_wanted = 0;
// Workers are never moved: their threads point into their stacks.
std::vector<std::unique_ptr<Worker>>* pool = nullptr;

}  // namespace

EMU_RUNTIME void syncthreads(const char* file, int line) {
  Thread* t = cur;
  t->state = AtBarrier;
  t->file = file;
  t->line = line;
#ifdef EMU_TSAN
  __tsan_release(&cur_block->barrier_obj);
#endif
  to_scheduler();
#ifdef EMU_TSAN
  __tsan_acquire(&cur_block->barrier_obj);
#endif
}

EMU_RUNTIME uint64_t warp_op(Op op, unsigned mask, uint64_t val, int arg, int width, const char* file, int line) {
  Thread* t = cur;
  t->state = AtWarp;
  t->op = op;
  t->mask = mask;
  t->val = val;
  t->arg = arg;
  t->width = width;
  t->file = file;
  t->line = line;
#ifdef EMU_TSAN
  // Only __syncwarp orders memory among the lanes (PTX bar.warp.sync);
  // shuffles and votes exchange registers and synchronise execution but
  // are not memory fences, so the race detector must not see them as one.
  void* obj = &cur_block->warp_obj[(t->linear / 32) % 32];
  if (op == OpSyncWarp) __tsan_release(obj);
#endif
  to_scheduler();
#ifdef EMU_TSAN
  if (op == OpSyncWarp) __tsan_acquire(obj);
#endif
  return cur->result;
}

EMU_RUNTIME void fail(const char* file, int line, const char* msg) {
  Block* b = cur_block;
  b->err = block_name(*b) + ": " + thread_name(*cur) + " at " + file + ":" + std::to_string(line) + ": " + msg;
  cur->state = Failed;
  to_scheduler();
  std::abort();  // never resumed
}

}  // namespace emu

extern "C" {

void emu_set_workers(int n) {
  std::lock_guard<std::mutex> lk(emu::launch_mu);
  emu::workers_wanted = n;
}

int emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
               size_t shared, const uint64_t* args, int nargs, char* err, size_t errlen) {
  using namespace emu;
  auto report = [&](const std::string& s) {
    std::snprintf(err, errlen, "%s", s.c_str());
    return 1;
  };
  const Kernel* k = find_kernel(name);
  if (!k) return report(std::string("no kernel named ") + name);
  if (k->nargs != nargs)
    return report(std::string("kernel ") + name + " takes " + std::to_string(k->nargs) + " arguments, got " +
                  std::to_string(nargs));
  const size_t nthreads = size_t(bx) * by * bz;
  if (nthreads == 0 || nthreads > 1024 || bz > 64)
    return report("kernel " + std::string(name) + ": block of " + std::to_string(bx) + "x" + std::to_string(by) +
                  "x" + std::to_string(bz) + " threads is not launchable");
  if (gy > 65535 || gz > 65535) return report("kernel " + std::string(name) + ": grid y or z above 65535");
  if (shared > 227 << 10) return report("kernel " + std::string(name) + ": dynamic shared memory above 227 KiB");
  const size_t nblocks = size_t(gx) * gy * gz;
  if (nblocks == 0) return 0;

  std::lock_guard<std::mutex> lk(launch_mu);
  int nw = workers_wanted > 0 ? workers_wanted : int(std::max(1u, std::thread::hardware_concurrency()));
  nw = int(std::min<size_t>(size_t(nw), nblocks));
  if (!pool) pool = new std::vector<std::unique_ptr<Worker>>();
  while (pool->size() < size_t(nw)) pool->push_back(std::make_unique<Worker>());

  std::vector<uint64_t> argv(args, args + nargs);
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex err_mu;
  std::string first_err;
  auto work = [&](int w) {
    Worker& wk = *(*pool)[size_t(w)];
    wk.prepare(unsigned(nthreads), shared);
    Block b;
    b.bdim = dim3{bx, by, bz};
    b.gdim = dim3{gx, gy, gz};
    b.threads = &wk.span;
    b.kernel = k;
    b.args = argv.data();
    b.dyn = wk.dyn.data();
    for (;;) {
      if (stop.load()) return;
      const size_t i = next.fetch_add(1);
      if (i >= nblocks) return;
      b.bid = uint3{unsigned(i % gx), unsigned(i / gx % gy), unsigned(i / (size_t(gx) * gy))};
      if (shared) std::memset(b.dyn, 0xff, shared);
      if (!run_block(b)) {
        std::lock_guard<std::mutex> el(err_mu);
        if (first_err.empty()) first_err = b.err;
        stop.store(true);
        return;
      }
    }
  };
  if (nw == 1) {
    work(0);
  } else {
    std::vector<std::thread> ts;
    for (int w = 0; w < nw; w++) ts.emplace_back(work, w);
    for (auto& t : ts) t.join();
  }
  if (!first_err.empty()) return report(first_err);
  return 0;
}

}  // extern "C"
