// The communicator between GPUs over NCCL (comm.h): sums of device memory,
// one rank per GPU (the device this process's CUDA runtime uses), the
// NCCL id made on rank 0 and broadcast over the MPI world.  Built when
// the Makefile finds nccl.h and libnccl beside MPI and CUDA
// (CNNPIPE_NCCL); otherwise comm_nccl_open says that this build has none.
//
// The CUDA backend runs on the legacy default stream; our stream is a
// blocking one, so the all-reduce starts after the backward's kernels and
// the synchronisation at its end makes the sum visible to the next step.
#include <stdlib.h>
#include "alloc.h"
#include "comm_impl.h"
#include "err.h"

#if CNNPIPE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

typedef struct {
	ncclComm_t nc;
	cudaStream_t stream;
} Nccl;

static int nccl_fail(ncclResult_t r, const char *what, char *err, size_t errlen)
{
	return err_set(err, errlen, "NCCL %s: %s", what, ncclGetErrorString(r));
}

static int nccl_sum(Comm *c, float *buf, size_t n, float scale, char *err,
                    size_t errlen)
{
	Nccl *g = c->impl;
	ncclRedOp_t op = ncclSum;
	ncclResult_t r;
	// each rank's own factor, applied on the way in (NCCL >= 2.11)
	if (scale != 1.0f && (r = ncclRedOpCreatePreMulSum(&op, &scale, ncclFloat,
	                              ncclScalarHostImmediate, g->nc)) != ncclSuccess)
		return nccl_fail(r, "pre-multiplied sum", err, errlen);
	r = ncclAllReduce(buf, buf, n, ncclFloat, op, g->nc, g->stream);
	if (op != ncclSum)
		ncclRedOpDestroy(op, g->nc);
	if (r != ncclSuccess)
		return nccl_fail(r, "all-reduce", err, errlen);
	cudaError_t e = cudaStreamSynchronize(g->stream);
	if (e != cudaSuccess)
		return err_set(err, errlen, "NCCL all-reduce: %s", cudaGetErrorString(e));
	return 0;
}

// Host buffers go over the world the communicator was made on (through
// its table: comm.c calls into this file, so this file does not call back).
static int nccl_sum_f64(Comm *c, double *buf, size_t n, char *err, size_t errlen)
{
	return c->host->ops->allreduce_sum_f64(c->host, buf, n, err, errlen);
}

static int nccl_broadcast(Comm *c, void *buf, size_t bytes, int root, char *err,
                          size_t errlen)
{
	return c->host->ops->broadcast(c->host, buf, bytes, root, err, errlen);
}

static int nccl_barrier(Comm *c, char *err, size_t errlen)
{
	return c->host->ops->barrier(c->host, err, errlen);
}

static void nccl_abort(Comm *c, int code)
{
	ncclCommAbort(((Nccl *)c->impl)->nc);
	c->host->ops->abort(c->host, code);
}

static void nccl_close(Comm *c)
{
	Nccl *g = c->impl;
	ncclCommDestroy(g->nc);
	cudaStreamDestroy(g->stream);
	free(g);
}

static const CommOps NCCL_OPS = {
	.name = "nccl", .on_device = 1, .allreduce_sum = nccl_sum,
	.allreduce_sum_f64 = nccl_sum_f64, .broadcast = nccl_broadcast,
	.barrier = nccl_barrier, .abort = nccl_abort, .close = nccl_close,
};

int comm_nccl_built(void)
{
	return 1;
}

Comm *comm_nccl_open(Comm *world, char *err, size_t errlen)
{
	ncclUniqueId id;
	ncclResult_t r;
	if (world->rank == 0 && (r = ncclGetUniqueId(&id)) != ncclSuccess) {
		nccl_fail(r, "unique id", err, errlen);
		return NULL;
	}
	// every rank takes part in the broadcast, or rank 0's would hang
	if (world->ops->broadcast(world, &id, sizeof id, 0, err, errlen) < 0)
		return NULL;
	Nccl *g = xcalloc(1, sizeof *g);
	cudaError_t e = cudaStreamCreate(&g->stream);
	if (e != cudaSuccess) {
		err_set(err, errlen, "NCCL: a CUDA stream: %s", cudaGetErrorString(e));
		free(g);
		return NULL;
	}
	if ((r = ncclCommInitRank(&g->nc, world->size, id, world->rank)) != ncclSuccess) {
		nccl_fail(r, "init", err, errlen);
		cudaStreamDestroy(g->stream);
		free(g);
		return NULL;
	}
	Comm *c = xcalloc(1, sizeof *c);
	c->ops = &NCCL_OPS;
	c->impl = g;
	c->rank = world->rank;
	c->size = world->size;
	c->local_rank = world->local_rank;
	c->host = world;
	return c;
}

#else

int comm_nccl_built(void)
{
	return 0;
}

Comm *comm_nccl_open(Comm *world, char *err, size_t errlen)
{
	(void)world;
	err_set(err, errlen, "this build has no NCCL (make finds nccl.h and libnccl "
	        "in CUDA_HOME beside mpicc)");
	return NULL;
}

#endif
