// The communication interface (comm.h): which world a process is in, the
// single process's "none" communicator, and the calls that go through a
// communicator's table to the library behind it.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "comm.h"
#include "comm_impl.h"
#include "err.h"

// ---- none: the one process of a plain run ------------------------------------

static int none_sum(Comm *c, float *buf, size_t n, float scale, char *err,
                    size_t errlen)
{
	(void)c, (void)err, (void)errlen;
	if (scale != 1.0f)
		for (size_t i = 0; i < n; i++)
			buf[i] *= scale;
	return 0;
}

static int none_sum_f64(Comm *c, double *buf, size_t n, char *err, size_t errlen)
{
	(void)c, (void)buf, (void)n, (void)err, (void)errlen;
	return 0;
}

static int none_broadcast(Comm *c, void *buf, size_t bytes, int root,
                          char *err, size_t errlen)
{
	(void)c, (void)buf, (void)bytes, (void)root, (void)err, (void)errlen;
	return 0;
}

static int none_barrier(Comm *c, char *err, size_t errlen)
{
	(void)c, (void)err, (void)errlen;
	return 0;
}

static void none_abort(Comm *c, int code)
{
	(void)c;
	exit(code);
}

static void none_close(Comm *c)
{
	(void)c;
}

static const CommOps NONE = {
	.name = "none", .on_device = 0, .allreduce_sum = none_sum,
	.allreduce_sum_f64 = none_sum_f64, .broadcast = none_broadcast,
	.barrier = none_barrier, .abort = none_abort, .close = none_close,
};

// ---- the world ----------------------------------------------------------------

// The launcher's word for the job's size: Open MPI's mpirun, a PMI or
// PMIx launcher (MPICH's hydra, Slurm's srun); -1 when none started us,
// 0 when one did without saying how many.
static long launched_size(void)
{
	const char *keys[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE" };
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const char *v = getenv(keys[i]);
		if (v && *v)
			return strtol(v, NULL, 10);
	}
	return getenv("PMIX_RANK") ? 0 : -1;
}

Comm *comm_world(char *err, size_t errlen)
{
	long size = launched_size();
	if (size >= 0) {
		char why[512] = "";
		Comm *c = comm_mpi_open(why, sizeof why);
		if (c)
			return c;
		// A launcher that started one process is a plain run; under
		// more, running alone would be N whole trainings on one output.
		if (size != 1) {
			err_set(err, errlen, "started by a launcher (mpirun, srun) as one of %s "
			        "processes, but %s", size > 1 ? "several" : "maybe several", why);
			return NULL;
		}
	}
	Comm *c = xcalloc(1, sizeof *c);
	c->ops = &NONE;
	c->size = 1;
	return c;
}

Comm *comm_device(Comm *world, char *err, size_t errlen)
{
	if (world->size == 1)
		return err_set(err, errlen, "one process: nothing to reduce"), NULL;
	return comm_nccl_open(world, err, errlen);
}

int comm_device_available(void)
{
	return comm_nccl_built();
}

void comm_close(Comm *c)
{
	if (!c)
		return;
	c->ops->close(c);
	free(c);
}

int comm_rank(const Comm *c) { return c->rank; }
int comm_size(const Comm *c) { return c->size; }
int comm_local_rank(const Comm *c) { return c->local_rank; }
const char *comm_name(const Comm *c) { return c->ops->name; }
int comm_on_device(const Comm *c) { return c->ops->on_device; }

int comm_allreduce_sum(Comm *c, float *buf, size_t n, float scale, char *err,
                       size_t errlen)
{
	return c->ops->allreduce_sum(c, buf, n, scale, err, errlen);
}

int comm_allreduce_sum_f64(Comm *c, double *buf, size_t n, char *err,
                           size_t errlen)
{
	return c->ops->allreduce_sum_f64(c, buf, n, err, errlen);
}

int comm_broadcast(Comm *c, void *buf, size_t bytes, int root, char *err,
                   size_t errlen)
{
	if (root < 0 || root >= c->size)
		return err_set(err, errlen, "broadcast from rank %d of %d", root, c->size);
	return c->ops->broadcast(c, buf, bytes, root, err, errlen);
}

int comm_barrier(Comm *c, char *err, size_t errlen)
{
	return c->ops->barrier(c, err, errlen);
}

void comm_abort(Comm *c, int code)
{
	fflush(NULL);
	c->ops->abort(c, code);
	exit(code);   // a library's abort that came back
}
