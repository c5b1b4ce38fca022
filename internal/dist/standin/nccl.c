// A stand-in libnccl.so.2 for machines without NVIDIA's library (NCCL is
// not in Debian): the NCCL API that rltrain's binding calls, implemented
// over MPI so that the binding, its call sequence and the id handshake run
// in CI with several ranks. It models the documented contract, not
// rltrain's use of it:
//   - ncclCommInitRank must get the same ncclUniqueId on every rank (the
//     one rank 0's ncclGetUniqueId returned), ranks 0..nranks-1 once each;
//     a wrong id, a repeated rank or a wrong count is ncclInvalidArgument;
//   - a destroyed or foreign communicator, an unknown data type or
//     operation, or a NULL buffer is ncclInvalidArgument;
//   - collectives reduce send into recv (in place when equal).
// Limits: the program must have initialised MPI (rltrain does under a
// launcher), nranks must be the MPI world size, and "device" pointers are
// host addresses (the stand-in CUDA driver's memory is host memory), so
// work runs when it is enqueued. It proves linking, marshalling, enum
// values and the call sequence, not NCCL's speed or its GPU transports.
//
// With RLTRAIN_NCCL_STANDIN_TRACE set to a path, every call appends one
// line "rank R: call args" to path.R.
#include <mpi.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ID_BYTES 128
#define ID_MAGIC 0x6e63636c73746e64ULL  // "ncclstnd"
#define COMM_MAGIC 0x636f6d6d6c697665ULL

typedef struct {
	char internal[ID_BYTES];
} ncclUniqueId;

typedef enum {
	ncclSuccess = 0,
	ncclUnhandledCudaError = 1,
	ncclSystemError = 2,
	ncclInternalError = 3,
	ncclInvalidArgument = 4,
	ncclInvalidUsage = 5,
	ncclRemoteError = 6,
	ncclInProgress = 7,
	ncclTimeout = 8,
} ncclResult_t;

struct ncclComm {
	uint64_t magic;
	MPI_Comm mpi;
	int rank, nranks;
};
typedef struct ncclComm* ncclComm_t;

static int group_depth;

static void trace(const char* fmt, ...) {
	const char* path = getenv("RLTRAIN_NCCL_STANDIN_TRACE");
	if (!path || !*path) return;
	int rank = -1, init = 0;
	MPI_Initialized(&init);
	if (init) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	char name[4096];
	snprintf(name, sizeof name, "%s.%d", path, rank);
	FILE* f = fopen(name, "a");
	if (!f) return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

ncclResult_t ncclGetVersion(int* version) {
	trace("ncclGetVersion");
	if (!version) return ncclInvalidArgument;
	*version = 22105;  // reports itself as 2.21.5
	return ncclSuccess;
}

const char* ncclGetErrorString(ncclResult_t r) {
	switch (r) {
	case ncclSuccess: return "no error";
	case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
	case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
	case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
	case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
	case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
	case ncclRemoteError: return "remote process exited or there was a network error";
	case ncclInProgress: return "NCCL operation in progress";
	case ncclTimeout: return "NCCL operation timed out";
	}
	return "unknown result code";
}

static void warn(const char* msg) { fprintf(stderr, "stand-in NCCL: %s\n", msg); }

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
	trace("ncclGetUniqueId");
	if (!id) return ncclInvalidArgument;
	static uint64_t counter;
	memset(id->internal, 0, ID_BYTES);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t words[4] = {ID_MAGIC, (uint64_t)getpid(), (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec,
	                     ++counter};
	memcpy(id->internal, words, sizeof words);
	return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
	trace("ncclCommInitRank nranks=%d rank=%d", nranks, rank);
	if (!comm) return ncclInvalidArgument;
	*comm = NULL;
	int init = 0, world = 0;
	MPI_Initialized(&init);
	if (!init) {
		warn("the program has not initialised MPI (this stand-in runs over the program's MPI world)");
		return ncclSystemError;
	}
	MPI_Comm_size(MPI_COMM_WORLD, &world);
	if (nranks != world) {
		warn("nranks differs from the MPI world size (a limit of this stand-in)");
		return ncclInvalidUsage;
	}
	if (rank < 0 || rank >= nranks) return ncclInvalidArgument;
	// Every rank checks every rank's id and rank number.
	struct {
		char id[ID_BYTES];
		int rank;
	} mine, *all = malloc(sizeof mine * (size_t)nranks);
	memcpy(mine.id, id.internal, ID_BYTES);
	mine.rank = rank;
	MPI_Allgather(&mine, sizeof mine, MPI_BYTE, all, sizeof mine, MPI_BYTE, MPI_COMM_WORLD);
	uint64_t magic;
	memcpy(&magic, mine.id, sizeof magic);
	ncclResult_t r = ncclSuccess;
	if (magic != ID_MAGIC) {
		warn("ncclCommInitRank: the id did not come from ncclGetUniqueId");
		r = ncclInvalidArgument;
	}
	int* seen = calloc((size_t)nranks, sizeof(int));
	for (int i = 0; i < nranks && r == ncclSuccess; i++) {
		if (memcmp(all[i].id, mine.id, ID_BYTES) != 0) {
			warn("ncclCommInitRank: ranks passed different ids (broadcast rank 0's id to every rank)");
			r = ncclInvalidArgument;
		} else if (seen[all[i].rank]++) {
			warn("ncclCommInitRank: two processes claimed the same rank");
			r = ncclInvalidArgument;
		}
	}
	free(seen);
	free(all);
	if (r != ncclSuccess) return r;
	struct ncclComm* c = calloc(1, sizeof *c);
	if (MPI_Comm_split(MPI_COMM_WORLD, 0, rank, &c->mpi) != MPI_SUCCESS) {
		free(c);
		return ncclSystemError;
	}
	c->magic = COMM_MAGIC;
	c->rank = rank;
	c->nranks = nranks;
	*comm = c;
	return ncclSuccess;
}

static int valid(ncclComm_t c) { return c && c->magic == COMM_MAGIC; }

static ncclResult_t release(ncclComm_t comm) {
	if (!valid(comm)) return ncclInvalidArgument;
	comm->magic = 0;
	MPI_Comm_free(&comm->mpi);
	free(comm);
	return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
	trace("ncclCommDestroy");
	return release(comm);
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
	trace("ncclCommAbort");
	return release(comm);
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* err) {
	if (!valid(comm) || !err) return ncclInvalidArgument;
	*err = ncclSuccess;
	return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int* count) {
	if (!valid(comm) || !count) return ncclInvalidArgument;
	*count = comm->nranks;
	return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank) {
	if (!valid(comm) || !rank) return ncclInvalidArgument;
	*rank = comm->rank;
	return ncclSuccess;
}

ncclResult_t ncclGroupStart(void) {
	trace("ncclGroupStart");
	group_depth++;
	return ncclSuccess;
}

ncclResult_t ncclGroupEnd(void) {
	trace("ncclGroupEnd");
	if (group_depth == 0) return ncclInvalidUsage;
	group_depth--;
	return ncclSuccess;
}

// ncclDataType_t and ncclRedOp_t as nccl.h numbers them; half, bf16 and
// fp8 have no MPI type and are refused.
static MPI_Datatype mpi_type(int dt) {
	switch (dt) {
	case 0: return MPI_INT8_T;
	case 1: return MPI_UINT8_T;
	case 2: return MPI_INT32_T;
	case 3: return MPI_UINT32_T;
	case 4: return MPI_INT64_T;
	case 5: return MPI_UINT64_T;
	case 7: return MPI_FLOAT;
	case 8: return MPI_DOUBLE;
	}
	return MPI_DATATYPE_NULL;
}

static MPI_Op mpi_op(int op) {
	switch (op) {
	case 0: return MPI_SUM;
	case 1: return MPI_PROD;
	case 2: return MPI_MAX;
	case 3: return MPI_MIN;
	}
	return MPI_OP_NULL;
}

ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, int datatype, int op, ncclComm_t comm,
                           void* stream) {
	trace("ncclAllReduce count=%zu datatype=%d op=%d inplace=%d stream=%p", count, datatype, op, send == recv,
	      stream);
	if (!valid(comm)) return ncclInvalidArgument;
	MPI_Datatype t = mpi_type(datatype);
	MPI_Op o = mpi_op(op);
	if (t == MPI_DATATYPE_NULL || o == MPI_OP_NULL) return ncclInvalidArgument;
	if (count == 0) return ncclSuccess;
	if (!send || !recv) return ncclInvalidArgument;
	if (count > (size_t)0x7fffffff) return ncclInvalidUsage;
	int rc = MPI_Allreduce(send == recv ? MPI_IN_PLACE : send, recv, (int)count, t, o, comm->mpi);
	return rc == MPI_SUCCESS ? ncclSuccess : ncclSystemError;
}
