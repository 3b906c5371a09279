// Between comm.c and the libraries behind it: the table each one fills.
#ifndef CNNPIPE_COMM_IMPL_H
#define CNNPIPE_COMM_IMPL_H
#include "comm.h"

typedef struct {
	const char *name;
	int on_device;
	int (*allreduce_sum)(Comm *c, float *buf, size_t n, float scale,
	                     char *err, size_t errlen);
	int (*allreduce_sum_f64)(Comm *c, double *buf, size_t n, char *err,
	                         size_t errlen);
	int (*broadcast)(Comm *c, void *buf, size_t bytes, int root, char *err,
	                 size_t errlen);
	int (*barrier)(Comm *c, char *err, size_t errlen);
	void (*abort)(Comm *c, int code);   // does not return
	void (*close)(Comm *c);
} CommOps;

struct Comm {
	const CommOps *ops;
	int rank, size, local_rank;
	Comm *host;      // NCCL: the world it was bootstrapped on (f64 sums,
	                 // broadcasts and barriers go there)
	void *impl;      // the library's own handles
};

// NULL with the reason when this build has no MPI (comm_mpi.c) or the
// launcher's world cannot be joined.
Comm *comm_mpi_open(char *err, size_t errlen);
// NULL with the reason when this build has no NCCL (comm_nccl.c) or its
// communicator cannot be made.
Comm *comm_nccl_open(Comm *world, char *err, size_t errlen);
int comm_nccl_built(void);

#endif
