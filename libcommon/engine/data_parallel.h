// Data-parallel training: the ranks of a job (comm.h) each take a slice of
// every global batch, and the gradients are summed so that every rank
// takes the same step and keeps the same weights.
//
// What a run computes depends on the global batch and the ghost batch of
// batch norm (--bn-batch B, batch_slice.h), not on the number of ranks:
//   - the data: every rank reads the same stream (a file, or its own
//     augment pipe: augment's draws are keyed by seed, epoch and record)
//     and keeps the rows of its ghost batches: the K = ceil(N/B) ghost
//     batches of a batch of N go to the ranks in contiguous runs
//     (rank r: ghost batches [K*r/size, K*(r+1)/size));
//   - batch norm: statistics over each ghost batch, its running statistics
//     moved by the mean of the ghost batches' (a weighted sum over ranks);
//   - dropout: each rank draws its rows of the masks that one process
//     draws for the whole batch (the same Rng, skipped ahead);
//   - the gradient: sum over ranks of (n_r/N) * the mean gradient of the
//     rank's n_r rows = the mean gradient over the batch; the loss likewise.
// What differs from one process with the same --bn-batch is only the
// order of floating-point sums: the gradients' (per rank, then across
// ranks), the running statistics' (weighted per rank), the losses'.
//
// Under several ranks the ghost batch defaults to ceil(bs/ranks).  Only
// rank 0 writes the model, checkpoints, log and epoch lines.
#ifndef CNNPIPE_DATA_PARALLEL_H
#define CNNPIPE_DATA_PARALLEL_H
#include <stddef.h>
#include <stdint.h>
#include "libcommon/util/comm.h"
#include "trainer.h"

typedef struct {
	Comm *world;          // the job's processes (size 1: a plain run)
	Comm *dev;            // between GPUs (NCCL), or NULL: device
	                      // gradients go through the host and world
	int rank, size;
	int bn_batch;         // ghost batch (0: the whole batch, one process)
	Trainer *t;
	int N, lo, n, ghosts, my_ghosts;   // the step's batch and slice
	double loss;          // the step's mean loss over the whole batch
	int stop;             // a stop request on some rank, agreed
	size_t goff, glen;    // the gradients that move: bytes in, floats
	float *host;          // device gradients staged (no dev comm)
	int *bn;              // the batch norms that train
	int nbn;
	double *small;        // loss, stop and running statistics, summed
	size_t nsmall;
	double comm_s;        // seconds in gradient sums (for the benchmark)
} DataParallel;

// Joins the job (comm_world) and, for a GPU run with several ranks on a
// machine, gives each rank its GPU (CUDA_VISIBLE_DEVICES = its local
// rank, unless the launcher set it): call before the device is picked.
// bs: the global batch; bn_batch: 0 for the default.  Dies on a world
// that cannot be joined or a ghost batch that does not fit the batch.
void dp_open(DataParallel *dp, int bs, int bn_batch);
// Ties the trainer to the job (after trainer_init): its ghost batch, the
// gradient sum between backward and step, NCCL for a GPU's gradients
// (CNNPIPE_COMM=mpi: through the host).
void dp_attach(DataParallel *dp, Trainer *t);
void dp_close(DataParallel *dp);

// Rows [*lo, *lo + *n) of a batch of N are this rank's (n may be 0).
void dp_slice(const DataParallel *dp, int N, int *lo, int *n);
// trainer_step on this rank's slice of the batch (x: (N, ...) host, the
// whole batch); returns the mean loss over the whole batch.
double dp_step(DataParallel *dp, Trainer *t, int N, const float *x,
               const int32_t *y, const double *lr);
// trainer_eval on this rank's share of an evaluation batch (eval mode:
// any split); the sums are this rank's until dp_sum.
void dp_eval(DataParallel *dp, Trainer *t, int N, const float *x,
             const int32_t *y, double *loss_sum, int64_t *correct);
// v (n doubles) summed over the ranks, on every rank.
void dp_sum(DataParallel *dp, double *v, size_t n);
// Waits for every rank.
void dp_barrier(DataParallel *dp);
// A stop request (signals.h) seen by any rank at the last step.
int dp_stop_requested(const DataParallel *dp);
// This rank writes the outputs (rank 0).
int dp_writer(const DataParallel *dp);
// Dies when the weights (and batch-norm statistics) of this rank are not
// rank 0's, bit for bit; what names the moment in the message.
void dp_check_same(DataParallel *dp, const char *what);

#endif
