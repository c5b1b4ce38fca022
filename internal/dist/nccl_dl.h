// Entry points of nccl_dl.c: NCCL loaded at run time.
#ifndef RL_NCCL_DL_H
#define RL_NCCL_DL_H

#include <stddef.h>
#include <stdint.h>

#define RL_NCCL_UNIQUE_ID_BYTES 128
// ncclRedOp_t and ncclDataType_t values of nccl.h.
#define RL_NCCL_SUM 0
#define RL_NCCL_INT64 4
#define RL_NCCL_FLOAT32 7
#define RL_NCCL_FLOAT64 8

int rl_nccl_open(const char* path, char* err, int errlen);
int rl_nccl_version(int* v);
int rl_nccl_unique_id(char* out);
int rl_nccl_init_rank(uintptr_t* comm, int nranks, const char* id, int rank);
int rl_nccl_destroy(uintptr_t comm);
int rl_nccl_abort(uintptr_t comm);
int rl_nccl_async_error(uintptr_t comm, int* e);
const char* rl_nccl_error_string(int r);
int rl_nccl_all_reduce_sum(uint64_t send, uint64_t recv, size_t count, int dtype, uintptr_t comm, uintptr_t stream);
int rl_nccl_group_start(void);
int rl_nccl_group_end(void);

#endif
