// The MPI library, loaded at run time. Nothing here includes mpi.h: the
// few entry points rltrain calls are declared below, for the two ABIs in
// use. Open MPI (libmpi.so.40) passes handles as pointers to global objects
// that the library exports (MPI_COMM_WORLD is &ompi_mpi_comm_world);
// MPICH and the libraries that share its ABI (libmpi.so.12: MPICH, Intel
// MPI, MVAPICH, Cray MPICH) pass them as int constants. Only byte
// data-movement collectives are used, so the only handles needed are the
// world communicator and MPI_BYTE: reductions are done by the caller in a
// fixed order.
#include "mpi_dl.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

// MPICH's handle values (mpi.h of MPICH 3 and 4; fixed by its ABI).
#define RL_MPICH_COMM_WORLD 0x44000000
#define RL_MPICH_BYTE 0x4c00010d

typedef void* ptr_h;  // Open MPI handle
typedef int int_h;    // MPICH handle

static void* lib;
static int abi;  // RL_ABI_OMPI or RL_ABI_MPICH
static ptr_h ompi_world, ompi_byte;

static int (*p_initialized)(int*);
static int (*p_finalized)(int*);
static int (*p_init_thread)(int*, char***, int, int*);
static int (*p_finalize)(void);
static int (*p_error_string)(int, char*, int*);
static int (*p_get_library_version)(char*, int*);

static int (*o_comm_rank)(ptr_h, int*);
static int (*o_comm_size)(ptr_h, int*);
static int (*o_barrier)(ptr_h);
static int (*o_bcast)(void*, int, ptr_h, int, ptr_h);
static int (*o_allgatherv)(const void*, int, ptr_h, void*, const int*, const int*, ptr_h, ptr_h);
static int (*o_alltoallv)(const void*, const int*, const int*, ptr_h, void*, const int*, const int*, ptr_h, ptr_h);
static int (*o_abort)(ptr_h, int);

static int (*m_comm_rank)(int_h, int*);
static int (*m_comm_size)(int_h, int*);
static int (*m_barrier)(int_h);
static int (*m_bcast)(void*, int, int_h, int, int_h);
static int (*m_allgatherv)(const void*, int, int_h, void*, const int*, const int*, int_h, int_h);
static int (*m_alltoallv)(const void*, const int*, const int*, int_h, void*, const int*, const int*, int_h, int_h);
static int (*m_abort)(int_h, int);

#define SYM(dst, name)                                                    \
	do {                                                                  \
		*(void**)(&dst) = dlsym(h, name);                                 \
		if (!dst) {                                                       \
			snprintf(err, errlen, "%s: symbol %s missing", path, name);   \
			goto fail;                                                    \
		}                                                                 \
	} while (0)

int rl_mpi_open(const char* path, char* err, int errlen) {
	void* h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	if (!h) {
		const char* e = dlerror();
		snprintf(err, errlen, "%s", e ? e : "dlopen failed");
		return -1;
	}
	SYM(p_initialized, "MPI_Initialized");
	SYM(p_finalized, "MPI_Finalized");
	SYM(p_init_thread, "MPI_Init_thread");
	SYM(p_finalize, "MPI_Finalize");
	SYM(p_error_string, "MPI_Error_string");
	SYM(p_get_library_version, "MPI_Get_library_version");
	ompi_world = dlsym(h, "ompi_mpi_comm_world");
	if (ompi_world) {
		abi = RL_ABI_OMPI;
		SYM(ompi_byte, "ompi_mpi_byte");
		SYM(o_comm_rank, "MPI_Comm_rank");
		SYM(o_comm_size, "MPI_Comm_size");
		SYM(o_barrier, "MPI_Barrier");
		SYM(o_bcast, "MPI_Bcast");
		SYM(o_allgatherv, "MPI_Allgatherv");
		SYM(o_alltoallv, "MPI_Alltoallv");
		SYM(o_abort, "MPI_Abort");
	} else if (dlsym(h, "MPIR_Err_create_code") || dlsym(h, "MPIX_Query_cuda_support") ||
	           strstr(path, ".so.12")) {
		abi = RL_ABI_MPICH;
		SYM(m_comm_rank, "MPI_Comm_rank");
		SYM(m_comm_size, "MPI_Comm_size");
		SYM(m_barrier, "MPI_Barrier");
		SYM(m_bcast, "MPI_Bcast");
		SYM(m_allgatherv, "MPI_Allgatherv");
		SYM(m_alltoallv, "MPI_Alltoallv");
		SYM(m_abort, "MPI_Abort");
	} else {
		snprintf(err, errlen,
		         "%s: neither Open MPI's ABI (ompi_mpi_comm_world) nor MPICH's (libmpi.so.12) was recognised", path);
		goto fail;
	}
	lib = h;
	return abi;
fail:
	dlclose(h);
	return -1;
}

int rl_mpi_init(int required, int* provided) {
	int done = 0;
	int rc = p_initialized(&done);
	if (rc != 0) return rc;
	if (done) {
		*provided = required;
		return 0;
	}
	return p_init_thread(NULL, NULL, required, provided);
}

int rl_mpi_finalize(void) {
	int done = 0;
	p_finalized(&done);
	if (done) return 0;
	return p_finalize();
}

void rl_mpi_error_string(int code, char* buf, int len) {
	// MPI_MAX_ERROR_STRING is 256 in Open MPI and 1024 in MPICH.
	char tmp[1024];
	int n = 0;
	tmp[0] = 0;
	if (p_error_string(code, tmp, &n) != 0 || n <= 0) snprintf(tmp, sizeof tmp, "MPI error %d", code);
	snprintf(buf, len, "%s", tmp);
}

void rl_mpi_library_version(char* buf, int len) {
	// MPI_MAX_LIBRARY_VERSION_STRING is 256 in Open MPI and 8192 in MPICH.
	static char tmp[8192];
	int n = 0;
	tmp[0] = 0;
	p_get_library_version(tmp, &n);
	snprintf(buf, len, "%s", tmp);
}

#define WORLD_M ((int_h)RL_MPICH_COMM_WORLD)
#define BYTE_M ((int_h)RL_MPICH_BYTE)

int rl_mpi_rank(int* r) { return abi == RL_ABI_OMPI ? o_comm_rank(ompi_world, r) : m_comm_rank(WORLD_M, r); }

int rl_mpi_size(int* n) { return abi == RL_ABI_OMPI ? o_comm_size(ompi_world, n) : m_comm_size(WORLD_M, n); }

int rl_mpi_barrier(void) { return abi == RL_ABI_OMPI ? o_barrier(ompi_world) : m_barrier(WORLD_M); }

int rl_mpi_bcast(void* buf, int n, int root) {
	return abi == RL_ABI_OMPI ? o_bcast(buf, n, ompi_byte, root, ompi_world) : m_bcast(buf, n, BYTE_M, root, WORLD_M);
}

int rl_mpi_allgatherv(const void* send, int n, void* recv, const int* counts, const int* displs) {
	if (abi == RL_ABI_OMPI) return o_allgatherv(send, n, ompi_byte, recv, counts, displs, ompi_byte, ompi_world);
	return m_allgatherv(send, n, BYTE_M, recv, counts, displs, BYTE_M, WORLD_M);
}

int rl_mpi_alltoallv(const void* send, const int* scounts, const int* sdispls, void* recv, const int* rcounts,
                     const int* rdispls) {
	if (abi == RL_ABI_OMPI)
		return o_alltoallv(send, scounts, sdispls, ompi_byte, recv, rcounts, rdispls, ompi_byte, ompi_world);
	return m_alltoallv(send, scounts, sdispls, BYTE_M, recv, rcounts, rdispls, BYTE_M, WORLD_M);
}

void rl_mpi_abort(int code) {
	if (abi == RL_ABI_OMPI)
		o_abort(ompi_world, code);
	else
		m_abort(WORLD_M, code);
}
