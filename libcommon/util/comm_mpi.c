// The communicator between processes over MPI (comm.h), on host memory.
// Built with mpicc's flags when the Makefile finds mpicc (CNNPIPE_MPI);
// otherwise comm_mpi_open says that this build has none.
//
// Errors come back (MPI_ERRORS_RETURN on our duplicate of the world) so
// that a failed collective is reported as "train: ...: MPI: reason"; a
// peer that dies is noticed by mpirun, which ends the others.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include "alloc.h"
#include "comm_impl.h"
#include "err.h"

#if CNNPIPE_MPI
#include <mpi.h>

typedef struct {
	MPI_Comm comm;
	int finalize;     // we initialised MPI, so we finalise it
} Mpi;

static MPI_Comm mpi_of(Comm *c)
{
	return ((Mpi *)c->impl)->comm;
}

static int mpi_fail(int rc, const char *what, char *err, size_t errlen)
{
	char s[MPI_MAX_ERROR_STRING];
	int len = 0;
	if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS)
		len = snprintf(s, sizeof s, "error %d", rc);
	return err_set(err, errlen, "MPI %s: %.*s", what, len, s);
}

// MPI counts are ints: sums of more than INT_MAX values go in pieces.
#define PIECE ((size_t)1 << 30)

static int mpi_sum(Comm *c, float *buf, size_t n, float scale, char *err,
                   size_t errlen)
{
	if (scale != 1.0f)
		for (size_t i = 0; i < n; i++)
			buf[i] *= scale;
	for (size_t o = 0; o < n; o += PIECE) {
		size_t k = n - o < PIECE ? n - o : PIECE;
		int rc = MPI_Allreduce(MPI_IN_PLACE, buf + o, (int)k, MPI_FLOAT, MPI_SUM,
		                       mpi_of(c));
		if (rc != MPI_SUCCESS)
			return mpi_fail(rc, "all-reduce", err, errlen);
	}
	return 0;
}

static int mpi_sum_f64(Comm *c, double *buf, size_t n, char *err, size_t errlen)
{
	for (size_t o = 0; o < n; o += PIECE) {
		size_t k = n - o < PIECE ? n - o : PIECE;
		int rc = MPI_Allreduce(MPI_IN_PLACE, buf + o, (int)k, MPI_DOUBLE, MPI_SUM,
		                       mpi_of(c));
		if (rc != MPI_SUCCESS)
			return mpi_fail(rc, "all-reduce", err, errlen);
	}
	return 0;
}

static int mpi_broadcast(Comm *c, void *buf, size_t bytes, int root, char *err,
                         size_t errlen)
{
	for (size_t o = 0; o < bytes; o += PIECE) {
		size_t k = bytes - o < PIECE ? bytes - o : PIECE;
		int rc = MPI_Bcast((char *)buf + o, (int)k, MPI_BYTE, root, mpi_of(c));
		if (rc != MPI_SUCCESS)
			return mpi_fail(rc, "broadcast", err, errlen);
	}
	return 0;
}

static int mpi_barrier(Comm *c, char *err, size_t errlen)
{
	int rc = MPI_Barrier(mpi_of(c));
	return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "barrier", err, errlen);
}

static void mpi_abort(Comm *c, int code)
{
	MPI_Abort(mpi_of(c), code);
}

static void mpi_close(Comm *c)
{
	Mpi *m = c->impl;
	MPI_Comm_free(&m->comm);
	if (m->finalize)
		MPI_Finalize();
	free(m);
}

static const CommOps MPI_OPS = {
	.name = "mpi", .on_device = 0, .allreduce_sum = mpi_sum,
	.allreduce_sum_f64 = mpi_sum_f64, .broadcast = mpi_broadcast,
	.barrier = mpi_barrier, .abort = mpi_abort, .close = mpi_close,
};

Comm *comm_mpi_open(char *err, size_t errlen)
{
	int inited = 0, provided = 0, rc;
	MPI_Initialized(&inited);
	// the kernels' threads never call MPI: only the main thread does
	if (!inited && (rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED,
	                                     &provided)) != MPI_SUCCESS) {
		mpi_fail(rc, "init", err, errlen);
		return NULL;
	}
	Mpi *m = xcalloc(1, sizeof *m);
	m->finalize = !inited;
	MPI_Comm_dup(MPI_COMM_WORLD, &m->comm);
	MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
	Comm *c = xcalloc(1, sizeof *c);
	c->ops = &MPI_OPS;
	c->impl = m;
	MPI_Comm_rank(m->comm, &c->rank);
	MPI_Comm_size(m->comm, &c->size);
	MPI_Comm node;
	MPI_Comm_split_type(m->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node);
	MPI_Comm_rank(node, &c->local_rank);
	MPI_Comm_free(&node);
	return c;
}

#else

Comm *comm_mpi_open(char *err, size_t errlen)
{
	err_set(err, errlen, "this build has no MPI (make finds mpicc: install "
	        "libopenmpi-dev, or MPI=1)");
	return NULL;
}

#endif
