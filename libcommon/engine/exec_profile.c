// CNNPIPE_PROFILE=1: the time of every node's forward and backward, summed
// over a run and printed to standard error when the execution state is
// freed (exec.h).  On the CPU backend the times are the work's; on one
// that runs asynchronously they are the launches' only.  A fused chain's
// time is its convolution's; the nodes folded into it show none.
#include <stdio.h>
#include <stdlib.h>
#include "exec.h"
#include "exec_internal.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/timer.h"

void exec_profile_init(Exec *e)
{
	const char *v = getenv("CNNPIPE_PROFILE");
	if (v && *v && *v != '0')
		e->prof = xcalloc((size_t)(e->m->n ? e->m->n : 1) * 2, sizeof(double));
}

double exec_profile_start(const Exec *e)
{
	return e->prof ? now_seconds() : 0.0;
}

void exec_profile_add(Exec *e, int node, int backward, double t0)
{
	if (e->prof)
		e->prof[2 * node + backward] += now_seconds() - t0;
}

static const char *op_name(int op)
{
	static const char *names[] = { "?", "conv", "bn", "relu", "leaky", "maxpool",
	        "avgpool", "add", "concatpool", "gap", "flatten", "dropout", "linear",
	        "logsoftmax", "shortcut" };
	return op > 0 && op < (int)(sizeof names / sizeof *names) ? names[op] : "?";
}

void exec_profile_print(const Exec *e)
{
	if (!e->prof)
		return;
	double tf = 0, tb = 0;
	for (int i = 0; i < e->m->n; i++) {
		tf += e->prof[2 * i];
		tb += e->prof[2 * i + 1];
	}
	fprintf(stderr, "profile: %-24s %-10s %10s %10s\n", "node", "op", "fwd ms", "bwd ms");
	for (int i = 0; i < e->m->n; i++) {
		const double f = e->prof[2 * i], b = e->prof[2 * i + 1];
		if (f > 0 || b > 0)
			fprintf(stderr, "profile: %-24s %-10s %10.1f %10.1f\n", e->m->nodes[i].name,
			        op_name(e->m->nodes[i].op), 1e3 * f, 1e3 * b);
	}
	fprintf(stderr, "profile: %-24s %-10s %10.1f %10.1f\n", "total", "", 1e3 * tf, 1e3 * tb);
}
