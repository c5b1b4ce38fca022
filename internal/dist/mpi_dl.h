// Entry points of mpi_dl.c: the MPI library loaded at run time.
#ifndef RL_MPI_DL_H
#define RL_MPI_DL_H

#define RL_ABI_OMPI 1
#define RL_ABI_MPICH 2

// rl_mpi_open loads the library at path; it returns RL_ABI_OMPI or
// RL_ABI_MPICH, or -1 with a message in err.
int rl_mpi_open(const char* path, char* err, int errlen);
int rl_mpi_init(int required, int* provided);
int rl_mpi_finalize(void);
void rl_mpi_error_string(int code, char* buf, int len);
void rl_mpi_library_version(char* buf, int len);
int rl_mpi_rank(int* r);
int rl_mpi_size(int* n);
int rl_mpi_barrier(void);
int rl_mpi_bcast(void* buf, int n, int root);
int rl_mpi_allgatherv(const void* send, int n, void* recv, const int* counts, const int* displs);
int rl_mpi_alltoallv(const void* send, const int* scounts, const int* sdispls, void* recv, const int* rcounts,
                     const int* rdispls);
void rl_mpi_abort(int code);

#endif
