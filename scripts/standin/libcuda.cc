// A stand-in libcuda.so.1: the CUDA driver API functions rltrain's binding
// calls (kernels/cuda/cudrv/api.c), implemented over the CPU emulator of
// kernels/cuda, which runs the same .cu sources the committed PTX was
// compiled from. Device memory is host memory; a "JIT" parses the PTX for
// its kernels, parameter sizes and shared memory, and launches run the
// emulated kernel of the same name.
//
// It follows the driver API's documented contract rather than rltrain's
// use of it:
//   - cuInit first; CUDA_ERROR_NO_DEVICE when no device (STANDIN_DEVICES=0);
//   - a context must be current on the calling OS thread (per-thread
//     current context); destroyed contexts are invalid;
//   - cuMemAlloc does not zero: fresh memory is filled with 0xff bytes
//     (NaN as float, -1 as int); zero-byte allocations are invalid;
//   - copies and memsets must lie inside one live allocation; overlapping
//     device-to-device copies (undefined on a GPU) are refused;
//   - launches are checked as the hardware checks them: grid dimensions
//     ≥ 1, x < 2³¹, y and z ≤ 65535; at most 1024 threads a block (x, y ≤
//     1024, z ≤ 64) and no more than a kernel's .maxntid; dynamic plus
//     static shared memory ≤ 48 KiB unless cuFuncSetAttribute raised it;
//   - kernel parameters are read from kernelParams at the sizes the PTX
//     declares (4 bytes for .u32/.f32, 8 for .u64/.f64);
//   - a fault in a kernel (the emulator's report, or an injected one) is
//     sticky: every later call in the context returns it; it surfaces at
//     the next call unless CUDA_LAUNCH_BLOCKING=1 reports it at the launch;
//   - PTX whose .target is newer than the device, or whose ISA version is
//     newer than the driver supports, fails to load with a JIT log.
//
// Environment: STANDIN_CC=major.minor (default 9.0), STANDIN_DEVICES
// (default 1), STANDIN_MEM_BYTES (default 16 GiB), STANDIN_DRIVER_VERSION
// (default 12080), STANDIN_OOM_AT=N (the Nth cuMemAlloc fails with
// CUDA_ERROR_OUT_OF_MEMORY), STANDIN_LAUNCH_FAIL_AT=N (the Nth launch
// faults with CUDA_ERROR_ILLEGAL_ADDRESS), STANDIN_CALLS=file (each API
// function called is appended to file, once per process), STANDIN_TRACE=1
// (each allocation and launch is noted on stderr, numbered as the fault
// injection counts them).
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "emu.h"
#include "emu_bridge.h"
#include "standin.h"

namespace emu {
const Kernel* find_kernel(const char* name);
}

namespace {

typedef int CUresult;

struct Context;

struct Function {
  std::string name;
  std::vector<int> param_sizes;
  size_t static_shared = 0;
  unsigned maxntid = 0;  // 0: no launch bound
  int max_dynamic_shared = 48 << 10;
  struct Module* module = nullptr;
};

struct Module {
  Context* ctx = nullptr;
  std::map<std::string, Function*> funcs;
  bool live = true;
};

struct Context {
  int dev = 0;
  bool live = true;
  int sticky = 0;
  std::string sticky_what;
};

std::mutex mu;  // guards everything below
bool initialised;
std::set<Context*> contexts;  // live and destroyed (handles stay invalid, not reused)
std::set<Module*> modules;
std::set<Function*> functions;
std::map<uint64_t, size_t> allocs;  // base → bytes
std::map<uint64_t, Context*> alloc_ctx;
size_t allocated;
long alloc_calls, launch_calls;

thread_local Context* current;

int cc() {
  const char* v = getenv("STANDIN_CC");
  int major = 9, minor = 0;
  if (v && *v && sscanf(v, "%d.%d", &major, &minor) != 2) standin::note("STANDIN_CC=%s: want major.minor", v);
  return major * 10 + minor;
}

int device_count() { return int(standin::env_long("STANDIN_DEVICES", 1)); }
size_t total_mem() { return size_t(standin::env_long("STANDIN_MEM_BYTES", 16L << 30)); }
int driver_version() { return int(standin::env_long("STANDIN_DRIVER_VERSION", 12080)); }

// The newest PTX ISA a driver of a CUDA version JIT-compiles (PTX ISA
// release notes: CUDA 11.8 shipped PTX 7.8, 12.0 8.0, ..., 13.0 9.0).
int max_ptx_isa(int driver) {
  static const int table[][2] = {{11000, 70}, {11010, 71}, {11020, 72}, {11030, 73}, {11040, 74}, {11050, 75},
                                 {11060, 76}, {11070, 77}, {11080, 78}, {12000, 80}, {12010, 81}, {12020, 82},
                                 {12030, 83}, {12040, 84}, {12050, 85}, {12060, 85}, {12080, 87}, {12090, 88},
                                 {13000, 90}};
  int isa = 0;
  for (auto& e : table)
    if (driver >= e[0]) isa = e[1];
  return isa;
}

bool blocking() {
  const char* v = getenv("CUDA_LAUNCH_BLOCKING");
  return v && strcmp(v, "1") == 0;
}

// ctx_check is the prologue of every call that works in the current
// context: initialised, a live context current, no sticky error.
CUresult ctx_check() {
  if (!initialised) return CUDA_ERROR_NOT_INITIALIZED;
  Context* c = current;
  if (!c || !contexts.count(c) || !c->live) return CUDA_ERROR_INVALID_CONTEXT;
  return c->sticky;
}

// inside reports whether [p, p+bytes) lies in one live allocation.
bool inside(uint64_t p, size_t bytes) {
  auto it = allocs.upper_bound(p);
  if (it == allocs.begin()) return false;
  --it;
  return p >= it->first && p - it->first + bytes <= it->second && bytes <= it->second;
}

CUresult bad_range(const char* fn, uint64_t p, size_t bytes) {
  standin::note("%s: %zu bytes at %#llx are not inside one allocation", fn, bytes, (unsigned long long)p);
  return CUDA_ERROR_INVALID_VALUE;
}

int type_size(const std::string& t) {
  if (t == ".u8" || t == ".s8" || t == ".b8") return 1;
  if (t == ".u16" || t == ".s16" || t == ".b16" || t == ".f16") return 2;
  if (t == ".u32" || t == ".s32" || t == ".b32" || t == ".f32") return 4;
  if (t == ".u64" || t == ".s64" || t == ".b64" || t == ".f64") return 8;
  return 0;
}

// array_size reads "name[N]" as N·elem (0 when unsized).
size_t array_bytes(const std::string& decl, int elem) {
  size_t open = decl.find('['), close = decl.find(']');
  if (open == std::string::npos || close == std::string::npos || close == open + 1) return 0;
  return size_t(strtoull(decl.c_str() + open + 1, nullptr, 10)) * size_t(elem);
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

struct Parsed {
  int isa = 0, target = 0, address_size = 0;
  int target_line = 0;
  std::vector<Function*> funcs;
  std::string error;  // JIT error log text
};

// parse reads the PTX module: version, target, each entry's parameters,
// launch bound and shared memory (its own and the module-scope variables
// its body names).
Parsed parse(const char* text) {
  Parsed p;
  std::istringstream in(text);
  std::string line;
  int lineno = 0, depth = 0;
  std::map<std::string, size_t> module_shared;
  Function* f = nullptr;
  bool in_params = false;
  std::string body;
  auto finish = [&]() {
    for (auto& [name, bytes] : module_shared)
      if (body.find(name) != std::string::npos) f->static_shared += bytes;
    p.funcs.push_back(f);
    f = nullptr;
    body.clear();
  };
  while (std::getline(in, line)) {
    lineno++;
    std::string t = trim(line);
    if (size_t c = t.find("//"); c != std::string::npos) t = trim(t.substr(0, c));
    if (t.empty()) continue;
    std::istringstream ws(t);
    std::string w0;
    ws >> w0;
    if (depth == 0 && !f) {
      if (w0 == ".version") {
        int a = 0, b = 0;
        sscanf(t.c_str(), ".version %d.%d", &a, &b);
        p.isa = a * 10 + b;
      } else if (w0 == ".target") {
        sscanf(t.c_str(), ".target sm_%d", &p.target);
        p.target_line = lineno;
      } else if (w0 == ".address_size") {
        sscanf(t.c_str(), ".address_size %d", &p.address_size);
      } else if (w0 == ".shared") {
        std::string tok, type, name;
        std::istringstream ds(t);
        while (ds >> tok) {
          if (tok == ".shared" || tok == ".align") continue;
          if (isdigit((unsigned char)tok[0])) continue;
          if (tok[0] == '.') type = tok;
          else name = tok;
        }
        std::string base = name.substr(0, name.find('['));
        module_shared[base] = array_bytes(name, type_size(type));
      } else if (t.find(".entry ") != std::string::npos) {
        size_t e = t.find(".entry ") + 7;
        size_t paren = t.find('(', e);
        f = new Function;
        f->name = trim(t.substr(e, paren == std::string::npos ? std::string::npos : paren - e));
        in_params = paren != std::string::npos && t.find(')', paren) == std::string::npos;
        continue;
      }
    }
    if (f && in_params) {
      if (w0 == ")") {
        in_params = false;
        continue;
      }
      // .param .u64 name_param_0,   or   .param .align 8 .b8 name_param_1[16]
      std::string tok, type, name;
      std::istringstream ps(t);
      while (ps >> tok) {
        if (tok == ".param" || tok == ".align" || tok == ".ptr" || tok == ".global") continue;
        if (isdigit((unsigned char)tok[0])) continue;
        if (tok[0] == '.') type = tok;
        else name = tok;
      }
      if (!name.empty() && name.back() == ',') name.pop_back();
      if (name.find(')') != std::string::npos) in_params = false;
      int sz = name.find('[') != std::string::npos ? int(array_bytes(name, type_size(type))) : type_size(type);
      if (sz <= 0) {
        p.error = "line " + std::to_string(lineno) + ": parameter type '" + type + "' not understood";
        return p;
      }
      f->param_sizes.push_back(sz);
      continue;
    }
    if (f && depth == 0 && (w0 == ".maxntid" || w0 == ".reqntid")) {
      unsigned x = 1, y = 1, z = 1;
      sscanf(t.c_str() + w0.size(), " %u , %u , %u", &x, &y, &z);
      f->maxntid = x * y * z;
    }
    for (char ch : t) {
      if (ch == '{') depth++;
      if (ch == '}') depth--;
    }
    if (f) {
      if (w0 == ".shared") {  // .shared .align 4 .b8 name[128];
        std::string tok, type;
        std::istringstream ds(t);
        while (ds >> tok) {
          if (tok[0] == '.' && type_size(tok) > 0) type = tok;
          if (tok.find('[') != std::string::npos) f->static_shared += array_bytes(tok, type_size(type));
        }
      }
      body += t;
      body += '\n';
      if (depth == 0 && t.find('}') != std::string::npos) finish();
    }
  }
  if (f) p.error = "unterminated entry " + f->name;
  return p;
}

void write_log(char* buf, unsigned* size_slot, const std::string& s) {
  if (!buf || !size_slot || *size_slot == 0) return;
  size_t n = std::min<size_t>(s.size(), *size_slot - 1);
  memcpy(buf, s.data(), n);
  buf[n] = 0;
  *size_slot = unsigned(n + 1);
}

}  // namespace

// ---- shared with the other stand-ins (standin.h) -------------------------

STANDIN_API int standin_current_cc(void) {
  std::lock_guard<std::mutex> lk(mu);
  Context* c = current;
  if (!initialised || !c || !contexts.count(c) || !c->live) return -1;
  return cc();
}

STANDIN_API uintptr_t standin_current_ctx(void) {
  std::lock_guard<std::mutex> lk(mu);
  Context* c = current;
  return c && contexts.count(c) && c->live ? uintptr_t(c) : 0;
}

STANDIN_API int standin_sticky(void) {
  std::lock_guard<std::mutex> lk(mu);
  return current ? current->sticky : 0;
}

STANDIN_API int standin_in_allocation(uint64_t p, size_t bytes) {
  std::lock_guard<std::mutex> lk(mu);
  return inside(p, bytes);
}

static int fault_locked(int code, const char* what) {
  Context* c = current;
  if (!c) return code;
  if (!c->sticky) {
    c->sticky = code;
    c->sticky_what = what;
    standin::note("device fault (sticky from now on): %s", what);
  }
  return blocking() ? code : 0;
}

STANDIN_API int standin_fault(int code, const char* what) {
  std::lock_guard<std::mutex> lk(mu);
  return fault_locked(code, what);
}

STANDIN_API void standin_record(const char* fn) {
  const char* path = getenv("STANDIN_CALLS");
  if (!path || !*path) return;
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return;
  std::string line = std::string(fn) + "\n";
  ssize_t w = write(fd, line.data(), line.size());
  (void)w;
  close(fd);
}

// ---- initialisation and devices ------------------------------------------

STANDIN_API CUresult cuInit(unsigned flags) {
  RECORD();
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (device_count() <= 0) return CUDA_ERROR_NO_DEVICE;
  std::lock_guard<std::mutex> lk(mu);
  initialised = true;
  return CUDA_SUCCESS;
}

STANDIN_API CUresult cuDriverGetVersion(int* v) {
  RECORD();
  if (!v) return CUDA_ERROR_INVALID_VALUE;
  *v = driver_version();
  return CUDA_SUCCESS;
}

STANDIN_API CUresult cuDeviceGetCount(int* n) {
  RECORD();
  if (!initialised) return CUDA_ERROR_NOT_INITIALIZED;
  if (!n) return CUDA_ERROR_INVALID_VALUE;
  *n = device_count();
  return CUDA_SUCCESS;
}

STANDIN_API CUresult cuDeviceGet(int* dev, int ordinal) {
  RECORD();
  if (!initialised) return CUDA_ERROR_NOT_INITIALIZED;
  if (!dev) return CUDA_ERROR_INVALID_VALUE;
  if (ordinal < 0 || ordinal >= device_count()) return CUDA_ERROR_INVALID_DEVICE;
  *dev = ordinal;
  return CUDA_SUCCESS;
}

STANDIN_API CUresult cuDeviceGetName(char* name, int len, int dev) {
  RECORD();
  if (!initialised) return CUDA_ERROR_NOT_INITIALIZED;
  if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  if (dev < 0 || dev >= device_count()) return CUDA_ERROR_INVALID_DEVICE;
  int c = cc();
  snprintf(name, size_t(len), "rltrain stand-in GPU (CPU emulator)");
  (void)c;
  return CUDA_SUCCESS;
}

STANDIN_API CUresult cuDeviceGetAttribute(int* v, int attr, int dev) {
  RECORD();
  if (!initialised) return CUDA_ERROR_NOT_INITIALIZED;
  if (!v) return CUDA_ERROR_INVALID_VALUE;
  if (dev < 0 || dev >= device_count()) return CUDA_ERROR_INVALID_DEVICE;
  int c = cc();
  switch (attr) {
    case 1: *v = 1024; break;                                      // MAX_THREADS_PER_BLOCK
    case 2: case 3: *v = 1024; break;                              // MAX_BLOCK_DIM_X, _Y
    case 4: *v = 64; break;                                        // MAX_BLOCK_DIM_Z
    case 5: *v = 0x7fffffff; break;                                // MAX_GRID_DIM_X
    case 6: case 7: *v = 65535; break;                             // MAX_GRID_DIM_Y, _Z
    case 8: *v = 48 << 10; break;                                  // MAX_SHARED_MEMORY_PER_BLOCK
    case 10: *v = 32; break;                                       // WARP_SIZE
    case 16: *v = 8; break;                                        // MULTIPROCESSOR_COUNT
    case 75: *v = c / 10; break;                                   // COMPUTE_CAPABILITY_MAJOR
    case 76: *v = c % 10; break;                                   // COMPUTE_CAPABILITY_MINOR
    case 97: *v = c >= 90 ? 227 << 10 : c >= 80 ? 163 << 10 : 64 << 10; break;  // ..._PER_BLOCK_OPTIN
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

// ---- contexts -----------------------------------------------------------

STANDIN_API CUresult cuCtxCreate_v2(void** pctx, unsigned flags, int dev) {
  RECORD();
  std::lock_guard<std::mutex> lk(mu);
  if (!initialised) return CUDA_ERROR_NOT_INITIALIZED;
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  if (dev < 0 || dev >= device_count()) return CUDA_ERROR_INVALID_DEVICE;
  if (flags & ~0x1fu) return CUDA_ERROR_INVALID_VALUE;
  Context* c = new Context;
  c->dev = dev;
  contexts.insert(c);
  current = c;  // a new context is pushed, i.e. made current
  *pctx = c;
  return CUDA_SUCCESS;
}

STANDIN_API CUresult cuCtxSetCurrent(void* ctx) {
  RECORD();
  std::lock_guard<std::mutex> lk(mu);
  if (!initialised) return CUDA_ERROR_NOT_INITIALIZED;
  Context* c = static_cast<Context*>(ctx);
  if (c && (!contexts.count(c) || !c->live)) return CUDA_ERROR_INVALID_CONTEXT;
  current = c;
  return CUDA_SUCCESS;
}

STANDIN_API CUresult cuCtxSynchronize(void) {
  RECORD();
  std::lock_guard<std::mutex> lk(mu);
  return ctx_check();  // launches run to completion; only a sticky fault remains
}

STANDIN_API CUresult cuCtxDestroy_v2(void* ctx) {
  RECORD();
  std::lock_guard<std::mutex> lk(mu);
  if (!initialised) return CUDA_ERROR_NOT_INITIALIZED;
  Context* c = static_cast<Context*>(ctx);
  if (!c || !contexts.count(c) || !c->live) return CUDA_ERROR_INVALID_CONTEXT;
  c->live = false;
  for (auto it = alloc_ctx.begin(); it != alloc_ctx.end();) {
    if (it->second == c) {
      allocated -= allocs[it->first];
      allocs.erase(it->first);
      free(reinterpret_cast<void*>(it->first));
      it = alloc_ctx.erase(it);
    } else {
      ++it;
    }
  }
  for (Module* m : modules)
    if (m->ctx == c) m->live = false;
  if (current == c) current = nullptr;
  return CUDA_SUCCESS;
}

// ---- memory -------------------------------------------------------------

STANDIN_API CUresult cuMemAlloc_v2(uint64_t* p, size_t bytes) {
  RECORD();
  std::lock_guard<std::mutex> lk(mu);
  if (CUresult r = ctx_check()) return r;
  if (!p || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  if (standin::countdown("STANDIN_OOM_AT", &alloc_calls)) {
    standin::note("cuMemAlloc_v2 #%ld of %zu bytes: injected out-of-memory (STANDIN_OOM_AT)", alloc_calls, bytes);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  if (allocated + bytes > total_mem()) return CUDA_ERROR_OUT_OF_MEMORY;
  void* h = nullptr;
  if (posix_memalign(&h, 256, bytes) != 0 || !h) return CUDA_ERROR_OUT_OF_MEMORY;
  memset(h, 0xff, bytes);  // device memory starts with whatever was there
  uint64_t d = reinterpret_cast<uint64_t>(h);
  allocs[d] = bytes;
  alloc_ctx[d] = current;
  allocated += bytes;
  *p = d;
  if (getenv("STANDIN_TRACE")) standin::note("alloc #%ld: %zu bytes", alloc_calls, bytes);
  return CUDA_SUCCESS;
}

STANDIN_API CUresult cuMemFree_v2(uint64_t p) {
  RECORD();
  std::lock_guard<std::mutex> lk(mu);
  if (CUresult r = ctx_check()) return r;
  auto it = allocs.find(p);
  if (it == allocs.end()) {
    standin::note("cuMemFree_v2 of %#llx, which is not an allocation", (unsigned long long)p);
    return CUDA_ERROR_INVALID_VALUE;
  }
  allocated -= it->second;
  allocs.erase(it);
  alloc_ctx.erase(p);
  free(reinterpret_cast<void*>(p));
  return CUDA_SUCCESS;
}

STANDIN_API CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total) {
  RECORD();
  std::lock_guard<std::mutex> lk(mu);
  if (CUresult r = ctx_check()) return r;
  if (!free_bytes || !total) return CUDA_ERROR_INVALID_VALUE;
  *total = total_mem();
  *free_bytes = *total - std::min(*total, allocated);
  return CUDA_SUCCESS;
}

STANDIN_API CUresult cuMemcpyHtoD_v2(uint64_t dst, const void* src, size_t bytes) {
  RECORD();
  std::lock_guard<std::mutex> lk(mu);
  if (CUresult r = ctx_check()) return r;
  if (bytes == 0) return CUDA_SUCCESS;
  if (!src) return CUDA_ERROR_INVALID_VALUE;
  if (!inside(dst, bytes)) return bad_range(__func__, dst, bytes);
  memcpy(reinterpret_cast<void*>(dst), src, bytes);
  return CUDA_SUCCESS;
}

STANDIN_API CUresult cuMemcpyDtoH_v2(void* dst, uint64_t src, size_t bytes) {
  RECORD();
  std::lock_guard<std::mutex> lk(mu);
  if (CUresult r = ctx_check()) return r;
  if (bytes == 0) return CUDA_SUCCESS;
  if (!dst) return CUDA_ERROR_INVALID_VALUE;
  if (!inside(src, bytes)) return bad_range(__func__, src, bytes);
  memcpy(dst, reinterpret_cast<const void*>(src), bytes);
  return CUDA_SUCCESS;
}

STANDIN_API CUresult cuMemcpyDtoD_v2(uint64_t dst, uint64_t src, size_t bytes) {
  RECORD();
  std::lock_guard<std::mutex> lk(mu);
  if (CUresult r = ctx_check()) return r;
  if (bytes == 0) return CUDA_SUCCESS;
  if (!inside(dst, bytes)) return bad_range(__func__, dst, bytes);
  if (!inside(src, bytes)) return bad_range(__func__, src, bytes);
  if (dst < src + bytes && src < dst + bytes) {
    standin::note("cuMemcpyDtoD_v2: source and destination overlap (undefined on a GPU)");
    return CUDA_ERROR_INVALID_VALUE;
  }
  memcpy(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), bytes);
  return CUDA_SUCCESS;
}

STANDIN_API CUresult cuMemsetD8_v2(uint64_t dst, unsigned char v, size_t n) {
  RECORD();
  std::lock_guard<std::mutex> lk(mu);
  if (CUresult r = ctx_check()) return r;
  if (n == 0) return CUDA_SUCCESS;
  if (!inside(dst, n)) return bad_range(__func__, dst, n);
  memset(reinterpret_cast<void*>(dst), v, n);
  return CUDA_SUCCESS;
}

// ---- modules ------------------------------------------------------------

// CUjit_option values read here (cuda.h).
enum {
  JIT_INFO_LOG_BUFFER = 3,
  JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4,
  JIT_ERROR_LOG_BUFFER = 5,
  JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6,
  JIT_LOG_VERBOSE = 12,
  JIT_NUM_OPTIONS = 33,
};

STANDIN_API CUresult cuModuleLoadDataEx(void** pmod, const void* image, unsigned nopts, int* opts, void** vals) {
  RECORD();
  std::lock_guard<std::mutex> lk(mu);
  if (CUresult r = ctx_check()) return r;
  if (!pmod || !image || (nopts > 0 && (!opts || !vals))) return CUDA_ERROR_INVALID_VALUE;
  char *err_buf = nullptr, *info_buf = nullptr;
  unsigned *err_size = nullptr, *info_size = nullptr;
  bool verbose = false;
  for (unsigned i = 0; i < nopts; i++) {
    // Sizes and flags are passed in the value slot itself.
    switch (opts[i]) {
      case JIT_ERROR_LOG_BUFFER: err_buf = static_cast<char*>(vals[i]); break;
      case JIT_ERROR_LOG_BUFFER_SIZE_BYTES: err_size = reinterpret_cast<unsigned*>(&vals[i]); break;
      case JIT_INFO_LOG_BUFFER: info_buf = static_cast<char*>(vals[i]); break;
      case JIT_INFO_LOG_BUFFER_SIZE_BYTES: info_size = reinterpret_cast<unsigned*>(&vals[i]); break;
      case JIT_LOG_VERBOSE: verbose = reinterpret_cast<uintptr_t>(vals[i]) != 0; break;
      default:
        if (opts[i] < 0 || opts[i] >= JIT_NUM_OPTIONS) return CUDA_ERROR_INVALID_VALUE;
    }
  }
  const char* text = static_cast<const char*>(image);
  if (memcmp(text, "\x7f" "ELF", 4) == 0) {
    write_log(err_buf, err_size, "stand-in: cubin and fatbin images are not modelled, only PTX");
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  Parsed p = parse(text);
  int dev_cc = cc(), driver = driver_version();
  auto fail = [&](CUresult code, const std::string& log) {
    write_log(err_buf, err_size, "ptx JIT (stand-in): " + log);
    for (Function* f : p.funcs) delete f;
    return code;
  };
  if (!p.error.empty()) return fail(CUDA_ERROR_INVALID_PTX, p.error);
  if (p.isa == 0 || p.target == 0) return fail(CUDA_ERROR_INVALID_PTX, "no .version or .target directive");
  if (p.address_size != 64) return fail(CUDA_ERROR_INVALID_PTX, ".address_size 64 required");
  if (p.isa > max_ptx_isa(driver))
    return fail(CUDA_ERROR_UNSUPPORTED_PTX_VERSION,
                "PTX ISA " + std::to_string(p.isa / 10) + "." + std::to_string(p.isa % 10) +
                    " is newer than this driver (CUDA " + std::to_string(driver / 1000) + "." +
                    std::to_string(driver % 1000 / 10) + ") supports");
  if (p.target > dev_cc)
    return fail(CUDA_ERROR_INVALID_PTX, "line " + std::to_string(p.target_line) + ": .target sm_" +
                                            std::to_string(p.target) + " is newer than the device (sm_" +
                                            std::to_string(dev_cc) + ")");
  for (Function* f : p.funcs) {
    const emu::Kernel* k = emu::find_kernel(f->name.c_str());
    std::string bad;
    if (!k) bad = "kernel " + f->name + " has no emulated source (stand-in limitation)";
    else if (k->nargs != int(f->param_sizes.size()))
      bad = "kernel " + f->name + ": the PTX declares " + std::to_string(f->param_sizes.size()) +
            " parameters, its emulated source " + std::to_string(k->nargs) + " (PTX older than the .cu?)";
    for (int sz : f->param_sizes)
      if (sz > 8) bad = "kernel " + f->name + ": struct parameters are not modelled";
    if (f->static_shared > (48u << 10)) bad = "kernel " + f->name + ": static shared memory above 48 KiB";
    if (!bad.empty()) return fail(CUDA_ERROR_INVALID_PTX, bad);
  }
  Module* m = new Module;
  m->ctx = current;
  for (Function* f : p.funcs) {
    f->max_dynamic_shared = int((48u << 10) - f->static_shared);
    f->module = m;
    m->funcs[f->name] = f;
    functions.insert(f);
  }
  modules.insert(m);
  if (verbose)
    write_log(info_buf, info_size,
              "ptx JIT (stand-in): " + std::to_string(p.funcs.size()) + " kernels, PTX ISA " +
                  std::to_string(p.isa / 10) + "." + std::to_string(p.isa % 10) + " .target sm_" +
                  std::to_string(p.target) + " for sm_" + std::to_string(dev_cc));
  else
    write_log(info_buf, info_size, "");
  write_log(err_buf, err_size, "");
  *pmod = m;
  return CUDA_SUCCESS;
}

STANDIN_API CUresult cuModuleGetFunction(void** pf, void* mod, const char* name) {
  RECORD();
  std::lock_guard<std::mutex> lk(mu);
  if (CUresult r = ctx_check()) return r;
  Module* m = static_cast<Module*>(mod);
  if (!pf || !name) return CUDA_ERROR_INVALID_VALUE;
  if (!m || !modules.count(m) || !m->live) return CUDA_ERROR_INVALID_HANDLE;
  auto it = m->funcs.find(name);
  if (it == m->funcs.end()) return CUDA_ERROR_NOT_FOUND;
  *pf = it->second;
  return CUDA_SUCCESS;
}

STANDIN_API CUresult cuModuleUnload(void* mod) {
  RECORD();
  std::lock_guard<std::mutex> lk(mu);
  if (CUresult r = ctx_check()) return r;
  Module* m = static_cast<Module*>(mod);
  if (!m || !modules.count(m) || !m->live) return CUDA_ERROR_INVALID_HANDLE;
  m->live = false;
  return CUDA_SUCCESS;
}

// CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES raises the 48 KiB limit
// up to the device's opt-in maximum. (rltrain's kernels stay within 48 KiB
// and do not call it; it is here so that the limit is modelled honestly.)
STANDIN_API CUresult cuFuncSetAttribute(void* fn, int attr, int value) {
  RECORD();
  std::lock_guard<std::mutex> lk(mu);
  if (CUresult r = ctx_check()) return r;
  Function* f = static_cast<Function*>(fn);
  if (!f || !functions.count(f)) return CUDA_ERROR_INVALID_HANDLE;
  if (attr != 8) return CUDA_ERROR_INVALID_VALUE;
  int c = cc();
  int optin = c >= 90 ? 227 << 10 : c >= 80 ? 163 << 10 : 64 << 10;
  if (value < 0 || size_t(value) + f->static_shared > size_t(optin)) return CUDA_ERROR_INVALID_VALUE;
  f->max_dynamic_shared = value;
  return CUDA_SUCCESS;
}

// ---- launches -----------------------------------------------------------

STANDIN_API CUresult cuLaunchKernel(void* fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                    unsigned bz, unsigned shared, void* stream, void** params, void** extra) {
  RECORD();
  Function* f;
  std::vector<uint64_t> slots;
  {
    std::lock_guard<std::mutex> lk(mu);
    if (CUresult r = ctx_check()) return r;
    f = static_cast<Function*>(fn);
    if (!f || !functions.count(f) || !f->module->live || f->module->ctx != current) return CUDA_ERROR_INVALID_HANDLE;
    if (stream) return CUDA_ERROR_INVALID_HANDLE;  // no streams are ever created
    auto reject = [&](CUresult code, const char* why) {
      standin::note("cuLaunchKernel %s grid (%u,%u,%u) block (%u,%u,%u) shared %u: %s", f->name.c_str(), gx, gy, gz,
                    bx, by, bz, shared, why);
      return code;
    };
    if (gx == 0 || gy == 0 || gz == 0) return reject(CUDA_ERROR_INVALID_VALUE, "a zero grid dimension");
    if (gx > 0x7fffffffu || gy > 65535 || gz > 65535) return reject(CUDA_ERROR_INVALID_VALUE, "grid too large");
    if (bx == 0 || by == 0 || bz == 0) return reject(CUDA_ERROR_INVALID_VALUE, "a zero block dimension");
    if (bx > 1024 || by > 1024 || bz > 64 || size_t(bx) * by * bz > 1024)
      return reject(CUDA_ERROR_INVALID_VALUE, "more than 1024 threads a block");
    if (f->maxntid && size_t(bx) * by * bz > f->maxntid)
      return reject(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "more threads than the kernel's .maxntid");
    if (int(shared) > f->max_dynamic_shared)
      return reject(CUDA_ERROR_INVALID_VALUE, "dynamic shared memory above the limit (48 KiB with static, "
                                              "unless raised with cuFuncSetAttribute)");
    if (extra) return reject(CUDA_ERROR_INVALID_VALUE, "extra is not modelled");
    if (!f->param_sizes.empty() && !params) return reject(CUDA_ERROR_INVALID_VALUE, "no kernelParams");
    slots.assign(f->param_sizes.size(), 0);
    for (size_t i = 0; i < slots.size(); i++) memcpy(&slots[i], params[i], size_t(f->param_sizes[i]));
    bool fail = standin::countdown("STANDIN_LAUNCH_FAIL_AT", &launch_calls);
    if (getenv("STANDIN_TRACE")) standin::note("launch #%ld: %s", launch_calls, f->name.c_str());
    if (fail) {
      std::string what = "kernel " + f->name + " (launch #" + std::to_string(launch_calls) +
                         "): injected illegal address (STANDIN_LAUNCH_FAIL_AT)";
      return fault_locked(CUDA_ERROR_ILLEGAL_ADDRESS, what.c_str());
    }
  }
  char err[1024];
  if (emu_launch(f->name.c_str(), gx, gy, gz, bx, by, bz, shared, slots.data(), int(slots.size()), err,
                 sizeof err) != 0) {
    std::string what = "kernel " + f->name + ": " + err;
    return standin_fault(CUDA_ERROR_LAUNCH_FAILED, what.c_str());
  }
  return CUDA_SUCCESS;
}

// ---- errors -------------------------------------------------------------

namespace {
struct ErrorText {
  int code;
  const char* name;
  const char* text;
};
const ErrorText error_texts[] = {
    {0, "CUDA_SUCCESS", "no error"},
    {1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {218, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
    {222, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "the provided PTX was compiled with an unsupported toolchain."},
    {400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {700, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
    {701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
    {709, "CUDA_ERROR_CONTEXT_IS_DESTROYED", "context is destroyed"},
    {719, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {801, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
};
}  // namespace

STANDIN_API CUresult cuGetErrorName(CUresult code, const char** s) {
  RECORD();
  if (!s) return CUDA_ERROR_INVALID_VALUE;
  for (const ErrorText& e : error_texts)
    if (e.code == code) {
      *s = e.name;
      return CUDA_SUCCESS;
    }
  *s = nullptr;
  return CUDA_ERROR_INVALID_VALUE;
}

STANDIN_API CUresult cuGetErrorString(CUresult code, const char** s) {
  RECORD();
  if (!s) return CUDA_ERROR_INVALID_VALUE;
  for (const ErrorText& e : error_texts)
    if (e.code == code) {
      *s = e.text;
      return CUDA_SUCCESS;
    }
  *s = nullptr;
  return CUDA_ERROR_INVALID_VALUE;
}
