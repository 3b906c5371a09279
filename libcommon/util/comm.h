// The communication of data-parallel training, one interface whatever
// carries it: the processes of a job (ranks 0..size-1, started by mpirun,
// never by cnnpipe), a sum of every rank's buffer into every rank's, a
// broadcast, a barrier and an abort of the whole job.
//
// Behind it (comm_impl.h): "none", the one process of a plain run (size 1:
// a sum is the buffer itself); MPI (comm_mpi.c, built when mpicc is found)
// between processes, on host memory; NCCL (comm_nccl.c, built when nccl.h
// is found besides MPI) between GPUs, on device memory, bootstrapped over
// the MPI world.  The training loop calls comm_allreduce_sum and never
// asks which of them it talks to; comm_device says only where its buffers
// must live.
//
// Errors: a collective that fails returns -1 with the reason in err.  A
// rank that dies mid-collective is the launcher's to notice: Open MPI's
// mpirun then ends every other rank (README, "Data-parallel training").
#ifndef CNNPIPE_COMM_H
#define CNNPIPE_COMM_H
#include <stddef.h>

typedef struct Comm Comm;

// The world this process belongs to: MPI's when a launcher started it
// (Open MPI's OMPI_COMM_WORLD_SIZE, or PMI_SIZE / PMIX_RANK, in the
// environment) and this build has MPI, else the single process.  Returns
// NULL with the reason in err when the launcher is there but the world
// cannot be joined (a build without MPI under mpirun with -np > 1).
Comm *comm_world(char *err, size_t errlen);
// A communicator between the GPUs of the world's ranks (one GPU each, the
// CUDA device this process uses): NCCL's, when built with it; NULL with
// the reason in err otherwise (the caller then stages device buffers
// through the host and world).  world must outlive it.
Comm *comm_device(Comm *world, char *err, size_t errlen);
// This build has a communicator between GPUs (NCCL).
int comm_device_available(void);
// Leaves the communicator (MPI_Finalize for the world).  NULL is fine.
void comm_close(Comm *c);

int comm_rank(const Comm *c);
int comm_size(const Comm *c);
// This rank's index among the ranks on its machine (picks its GPU).
int comm_local_rank(const Comm *c);
// "none", "mpi", "nccl": for messages and logs only.
const char *comm_name(const Comm *c);
// The buffers of comm_allreduce_sum live in device memory (NCCL).
int comm_on_device(const Comm *c);

// buf (n floats, in place) = the sum over ranks of scale_r * buf_r, on
// every rank; each rank gives its own scale (e.g. its share of a batch).
int comm_allreduce_sum(Comm *c, float *buf, size_t n, float scale,
                       char *err, size_t errlen);
// The same for doubles (host memory on every communicator), unscaled.
int comm_allreduce_sum_f64(Comm *c, double *buf, size_t n, char *err,
                           size_t errlen);
// bytes at buf from rank root to every rank (host memory).
int comm_broadcast(Comm *c, void *buf, size_t bytes, int root, char *err,
                   size_t errlen);
int comm_barrier(Comm *c, char *err, size_t errlen);
// Ends every rank of the job with exit status code (a plain run: exit).
_Noreturn void comm_abort(Comm *c, int code);

#endif
