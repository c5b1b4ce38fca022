// NCCL, loaded at run time like cuBLAS: the entry points rltrain calls,
// declared from NCCL's public API (nccl.h of NCCL 2.x) so that no NCCL
// header or library is needed to build.
#include "nccl_dl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef struct {
	char internal[RL_NCCL_UNIQUE_ID_BYTES];
} rl_nccl_id;
typedef void* rl_nccl_comm;

static void* lib;
static int (*p_get_version)(int*);
static int (*p_get_unique_id)(rl_nccl_id*);
static int (*p_comm_init_rank)(rl_nccl_comm*, int, rl_nccl_id, int);
static int (*p_comm_destroy)(rl_nccl_comm);
static int (*p_comm_abort)(rl_nccl_comm);
static int (*p_comm_get_async_error)(rl_nccl_comm, int*);
static const char* (*p_get_error_string)(int);
static int (*p_all_reduce)(const void*, void*, size_t, int, int, rl_nccl_comm, void*);
static int (*p_group_start)(void);
static int (*p_group_end)(void);

#define SYM(dst, name)                                                  \
	do {                                                                \
		*(void**)(&dst) = dlsym(h, name);                               \
		if (!dst) {                                                     \
			snprintf(err, errlen, "%s: symbol %s missing", path, name); \
			dlclose(h);                                                 \
			return -1;                                                  \
		}                                                               \
	} while (0)

int rl_nccl_open(const char* path, char* err, int errlen) {
	if (lib) return 0;
	void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char* e = dlerror();
		snprintf(err, errlen, "%s", e ? e : "dlopen failed");
		return -1;
	}
	SYM(p_get_version, "ncclGetVersion");
	SYM(p_get_unique_id, "ncclGetUniqueId");
	SYM(p_comm_init_rank, "ncclCommInitRank");
	SYM(p_comm_destroy, "ncclCommDestroy");
	SYM(p_comm_abort, "ncclCommAbort");
	SYM(p_comm_get_async_error, "ncclCommGetAsyncError");
	SYM(p_get_error_string, "ncclGetErrorString");
	SYM(p_all_reduce, "ncclAllReduce");
	SYM(p_group_start, "ncclGroupStart");
	SYM(p_group_end, "ncclGroupEnd");
	lib = h;
	return 0;
}

int rl_nccl_version(int* v) { return p_get_version(v); }

int rl_nccl_unique_id(char* out) {
	rl_nccl_id id;
	memset(&id, 0, sizeof id);
	int r = p_get_unique_id(&id);
	memcpy(out, id.internal, sizeof id.internal);
	return r;
}

int rl_nccl_init_rank(uintptr_t* comm, int nranks, const char* id_bytes, int rank) {
	rl_nccl_id id;
	memcpy(id.internal, id_bytes, sizeof id.internal);
	rl_nccl_comm c = 0;
	int r = p_comm_init_rank(&c, nranks, id, rank);
	*comm = (uintptr_t)c;
	return r;
}

int rl_nccl_destroy(uintptr_t comm) { return p_comm_destroy((rl_nccl_comm)comm); }

int rl_nccl_abort(uintptr_t comm) { return p_comm_abort((rl_nccl_comm)comm); }

int rl_nccl_async_error(uintptr_t comm, int* e) { return p_comm_get_async_error((rl_nccl_comm)comm, e); }

const char* rl_nccl_error_string(int r) { return lib ? p_get_error_string(r) : "NCCL not loaded"; }

// Device pointers and the stream arrive as integers: they are not Go
// pointers.
int rl_nccl_all_reduce_sum(uint64_t send, uint64_t recv, size_t count, int dtype, uintptr_t comm, uintptr_t stream) {
	return p_all_reduce((const void*)send, (void*)recv, count, dtype, RL_NCCL_SUM, (rl_nccl_comm)comm, (void*)stream);
}

int rl_nccl_group_start(void) { return p_group_start(); }

int rl_nccl_group_end(void) { return p_group_end(); }
