// Buffer planning and fusion (plan.h).
//
// Greedy slot reuse: each value (a node output, or a gradient) lives from
// its definition to its last use; a slot whose value is dead is reused for a
// new one, growing it if needed.  The plan is cheap (a few hundred nodes)
// and made for every call, so it always fits N and the range.
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "plan.h"

#define ALIGNF 16   // floats per 64 bytes: every buffer starts 64-byte aligned

typedef struct {
	size_t cap;
	int busy;     // last step that reads the slot's value
	size_t off;
} Slot;

typedef struct {
	Slot *s;
	int n;
} Slots;

// Returns a slot index free at step `t` (busy < t) fitting `need`, else a new one.
static int slot_get(Slots *sl, size_t need, int t)
{
	int best = -1, big = -1;
	for (int i = 0; i < sl->n; i++) {
		if (sl->s[i].busy >= t)
			continue;
		if (sl->s[i].cap >= need &&
		    (best < 0 || sl->s[i].cap < sl->s[best].cap))
			best = i;
		if (big < 0 || sl->s[i].cap > sl->s[big].cap)
			big = i;
	}
	if (best < 0 && big >= 0) {
		sl->s[big].cap = need;
		best = big;
	}
	if (best < 0) {
		sl->s = xrealloc(sl->s, (size_t)(sl->n + 1) * sizeof *sl->s);
		sl->s[sl->n].cap = need;
		best = sl->n++;
	}
	return best;
}

// Lays the slots out one after the other; returns the total (floats).
static size_t slots_layout(Slots *sl)
{
	size_t off = 0;
	for (int i = 0; i < sl->n; i++) {
		sl->s[i].off = off;
		off += (sl->s[i].cap + ALIGNF - 1) / ALIGNF * ALIGNF;
	}
	return off;
}

size_t plan_numel(const Node *d, int N)
{
	return (size_t)N * d->C * d->H * d->W;
}

int plan_trainable(const Model *m, const Node *d)
{
	return (d->gw >= 0 || d->gb >= 0) && d->group >= m->frozen;
}

// Does node d's backward read its own output y?  (Then no later node may
// overwrite it in place.)
static int bwd_needs_y(const Node *d)
{
	return d->op == OP_RELU || d->op == OP_LOGSOFTMAX || leaky_from_y(d);
}

// A training run (every value kept for the backward): may a node overwrite
// its input in's buffer?  Only if no one needs any value that buffer holds:
// each node along its chain of in-place writers has one reader and a
// backward that reads no output of its own.  (So batch norm -> add -> ReLU
// share one buffer, as in PyTorch's torchvision blocks, `out += identity`
// and ReLU(inplace=True): the add's backward reads nothing, the ReLU's its
// output, the batch norm's its input.)
static int may_overwrite(const Model *m, int first, const int *nc,
                         const int *inplace, int in)
{
	for (int j = in;; j = m->nodes[j].in) {
		if (j < first || nc[j - first] != 1 || bwd_needs_y(&m->nodes[j]))
			return 0;
		if (!inplace[j - first])
			return 1;
	}
}

// Finds the conv [-> bn] [-> add] [-> relu | leaky] chains of an inference
// run.  lu: last reader of each node (extended to the tails that read a
// chain's inputs); rd: each node's only reader, or -1.
static void find_chains(const Model *m, int first, int last, int *lu,
                        const int *rd, int fuse_pool, int *cof, Chain *ch)
{
	for (int i = first; i < last; i++) {
		const Node *d = &m->nodes[i];
		if (d->op != OP_CONV)
			continue;
		Chain c = { -1, -1, -2, -1, -1, i, -1, -1 };
		int t = i, r = rd[i - first];
		if (r >= 0 && m->nodes[r].op == OP_BN) {
			c.bn = t = r;
			r = rd[t - first];
		}
		if (r >= 0 && m->nodes[r].op == OP_ADD && cof[r - first] < 0) {
			const Node *a = &m->nodes[r];
			c.res = a->in == t ? a->in2 : a->in;
			c.add = t = r;
			r = rd[t - first];
		}
		if (r >= 0 && (m->nodes[r].op == OP_RELU ||
		               (m->nodes[r].op == OP_LEAKY && m->nodes[r].slope >= 0 &&
		                m->nodes[r].slope <= 1))) {
			c.act = t = r;
			r = rd[t - first];
		}
		const Node *pl = r >= 0 ? &m->nodes[r] : NULL;
		if (fuse_pool && c.add < 0 && pl && pl->op == OP_MAXPOOL && pl->k == 2 &&
		    pl->stride == 2 && pl->pad == 0 && d->H % 2 == 0 && d->W % 2 == 0 &&
		    pl->H == d->H / 2 && pl->W == d->W / 2)
			c.pool = t = r;
		if (t == i)
			continue;   // a lone convolution
		c.tail = t;
		ch[i - first] = c;
		int mem[5] = { i, c.bn, c.add, c.act, c.pool };
		for (int j = 0; j < 5; j++)
			if (mem[j] >= 0)
				cof[mem[j] - first] = i;
		// the conv's input and the residual are read at the tail
		int rdr[2] = { d->in, c.add >= 0 ? c.res : -2 };
		for (int j = 0; j < 2; j++)
			if (rdr[j] >= first && lu[rdr[j] - first] < t)
				lu[rdr[j] - first] = t;
	}
}

// Pairs of chains (Chain.next, .prev): a 3x3 stride-1 chain whose tail's
// only reader is the conv of a 1x1 stride-1 chain; neither with an add or
// a pool.  The 3x3 conv's input is then read at the 1x1 chain's tail.
static void find_pairs(const Model *m, int first, int last, int *lu, const int *rd,
                       const int *cof, Chain *ch)
{
	for (int i = first; i < last; i++) {
		const Node *d = &m->nodes[i];
		Chain *a = &ch[i - first];
		if (d->op != OP_CONV || cof[i - first] != i || a->add >= 0 || a->pool >= 0 ||
		    d->k != 3 || d->stride != 1 || a->prev >= 0)
			continue;
		int j = rd[a->tail - first];
		if (j < 0 || j > last || m->nodes[j].op != OP_CONV || cof[j - first] != j)
			continue;
		const Node *e = &m->nodes[j];
		Chain *b = &ch[j - first];
		if (e->k != 1 || e->stride != 1 || e->pad != 0 || b->add >= 0 || b->pool >= 0)
			continue;
		a->next = j;
		b->prev = i;
		if (d->in >= first && lu[d->in - first] < b->tail)
			lu[d->in - first] = b->tail;
	}
}

void plan_forward(const Model *m, int N, int first, int last, int train,
                  int keep, int fuse_pool, int fuse_pw, ForwardPlan *p)
{
	if (first < 0 || last >= m->n || first > last || N <= 0)
		die("exec_forward: bad range [%d, %d] of %d nodes", first, last, m->n);
	keep = keep || train;
	int cnt = last - first + 1;
	memset(p, 0, sizeof *p);
	p->first = first;
	p->last = last;
	p->cnt = cnt;
	int *lu = xcalloc((size_t)cnt, sizeof(int));     // last reader (step)
	int *nc = xcalloc((size_t)cnt, sizeof(int));     // number of readers
	int *ext = xcalloc((size_t)cnt, sizeof(int));    // buffer is x itself
	int *rd = xmalloc_array((size_t)cnt, sizeof(int));   // the only reader, or -1
	p->slot = xcalloc((size_t)cnt, sizeof(int));
	p->off = xcalloc((size_t)cnt, sizeof(size_t));
	p->inplace = xcalloc((size_t)cnt, sizeof(int));
	p->cof = xmalloc_array((size_t)cnt, sizeof(int));
	p->ch = xcalloc((size_t)cnt, sizeof(Chain));
	for (int i = first; i <= last; i++) {
		const Node *d = &m->nodes[i];
		int ins[2] = { d->in, d->in2 };
		for (int j = 0; j < 2; j++) {
			int in = ins[j];
			if (in == -2)
				continue;
			if (in < first - 1 || in >= i || (first == 0 && in != -1 && in < 0))
				die("exec_forward: node %s reads node %d outside [%d, %d]",
				    d->name, in, first, last);
			if (in >= first) {
				lu[in - first] = i;
				nc[in - first]++;
			}
		}
	}
	for (int k = 0; k < cnt; k++)
		if (keep || k == cnt - 1)
			lu[k] = last;
	for (int k = 0; k < cnt; k++) {
		p->cof[k] = -1;
		rd[k] = !keep && k < cnt - 1 && nc[k] == 1 ? lu[k] : -1;
	}
	if (!keep) {
		find_chains(m, first, last, lu, rd, fuse_pool, p->cof, p->ch);
		if (fuse_pw)
			find_pairs(m, first, last, lu, rd, p->cof, p->ch);
	}
	free(rd);
	Slots sl = { 0 };
	for (int i = first; i <= last; i++) {
		const Node *d = &m->nodes[i];
		int k = i - first;
		int in = d->in;
		int in_ext = in < first;
		int ip = 0;
		// In place: an elementwise (or reshaping) op may write over its
		// input when nothing else reads that input afterwards.
		int elementwise = d->op == OP_RELU || d->op == OP_FLATTEN ||
		                  (d->op == OP_LEAKY && (!keep || leaky_from_y(d))) ||
		                  (d->op == OP_DROPOUT && !train) || d->op == OP_ADD;
		if (elementwise) {
			if (d->op == OP_FLATTEN || (d->op == OP_DROPOUT && !train)) {
				ip = 1;   // the same values: alias, whatever reads them
			} else if (!in_ext && !ext[in - first]) {
				ip = keep ? may_overwrite(m, first, nc, p->inplace, in)
				          : !p->inplace[in - first] && lu[in - first] == i;
			}
		}
		if (p->cof[k] >= 0)
			ip = 0;
		p->inplace[k] = ip;
		if (p->cof[k] >= 0 && (p->ch[p->cof[k] - first].tail != i ||
		                       p->ch[p->cof[k] - first].next >= 0)) {
			p->slot[k] = PLAN_NONE;
		} else if (ip) {
			if (in_ext) {
				ext[k] = 1;
				p->slot[k] = PLAN_EXTERNAL;
			} else {
				ext[k] = ext[in - first];
				p->slot[k] = p->slot[in - first];
				if (p->slot[k] >= 0 && sl.s[p->slot[k]].busy < lu[k])
					sl.s[p->slot[k]].busy = lu[k];
			}
		} else {
			p->slot[k] = slot_get(&sl, plan_numel(d, N), i);
			sl.s[p->slot[k]].busy = lu[k];
		}
	}
	p->total = slots_layout(&sl);
	for (int k = 0; k < cnt; k++)
		if (p->slot[k] >= 0)
			p->off[k] = sl.s[p->slot[k]].off;
	p->bn_act = xmalloc_array((size_t)cnt, sizeof(int));
	for (int k = 0; k < cnt; k++) {
		const Node *a = k + 1 < cnt ? &m->nodes[first + k + 1] : NULL;
		p->bn_act[k] = keep && m->nodes[first + k].op == OP_BN && nc[k] == 1 && a &&
		               a->in == first + k && a->in2 == -2 && p->inplace[k + 1] &&
		               (a->op == OP_RELU || leaky_from_y(a)) ? first + k + 1 : -1;
	}
	p->bn_pool = xmalloc_array((size_t)cnt, sizeof(int));
	for (int k = 0; k < cnt; k++) {
		const Node *q = k + 2 < cnt ? &m->nodes[first + k + 2] : NULL;
		p->bn_pool[k] = p->bn_act[k] >= 0 && q && q->op == OP_MAXPOOL &&
		                q->k == 2 && q->stride == 2 && q->pad == 0 &&
		                q->in == first + k + 1 && q->in2 == -2 && nc[k + 1] == 1
		              ? first + k + 2 : -1;
	}
	free(sl.s);
	free(lu);
	free(nc);
	free(ext);
}

void plan_forward_free(ForwardPlan *p)
{
	free(p->slot);
	free(p->off);
	free(p->inplace);
	free(p->bn_act);
	free(p->bn_pool);
	free(p->cof);
	free(p->ch);
	memset(p, 0, sizeof *p);
}

void plan_backward(const Model *m, int N, int first, int last, int want_dx,
                   const int *hold, BackwardPlan *p)
{
	int cnt = last - first + 1;
	memset(p, 0, sizeof *p);
	p->first = first;
	p->last = last;
	p->cnt = cnt;
	p->req = xcalloc((size_t)cnt, sizeof(int));
	p->off = xcalloc((size_t)cnt, sizeof(size_t));
	int *req = p->req;
	int *def = xcalloc((size_t)cnt, sizeof(int));   // step defining the gradient
	int *slot = xcalloc((size_t)cnt, sizeof(int));
	for (int i = first; i <= last; i++) {
		const Node *d = &m->nodes[i];
		int r = plan_trainable(m, d);
		int ins[2] = { d->in, d->in2 };
		for (int j = 0; j < 2; j++) {
			if (ins[j] == -2)
				continue;
			if (ins[j] < first)
				r |= want_dx;
			else
				r |= req[ins[j] - first];
		}
		req[i - first] = r;
		def[i - first] = i == last ? last + 1 : -1;
	}
	for (int i = first; i <= last; i++) {
		const Node *d = &m->nodes[i];
		int ins[2] = { d->in, d->in2 };
		for (int j = 0; j < 2; j++)
			if (ins[j] >= first && def[ins[j] - first] < i)
				def[ins[j] - first] = i;
	}
	// A node nothing reads gets no gradient (zero): skip it.
	for (int k = 0; k < cnt; k++)
		if (def[k] < 0)
			req[k] = 0;
	// Plan in reverse time: gradient of node i lives from step def[i]
	// (its last reader's backward) down to step i.  Time t = last + 1 - step.
	Slots sl = { 0 };
	for (int step = last + 1; step >= first; step--) {
		for (int i = first; i <= last; i++) {
			int k = i - first;
			if (!req[k] || def[k] != step || (hold && hold[k] == PLAN_NO_GRAD))
				continue;
			size_t n = plan_numel(&m->nodes[i], N);
			if (n > p->maxn)
				p->maxn = n;
			slot[k] = slot_get(&sl, n, last + 1 - step);
			int until = hold && hold[k] >= first && hold[k] < i ? hold[k] : i;
			sl.s[slot[k]].busy = last + 1 - until;
		}
	}
	p->total = slots_layout(&sl);
	for (int k = 0; k < cnt; k++)
		if (req[k] && !(hold && hold[k] == PLAN_NO_GRAD))
			p->off[k] = sl.s[slot[k]].off;
	free(sl.s);
	free(slot);
	free(def);
}

void plan_backward_free(BackwardPlan *p)
{
	free(p->req);
	free(p->off);
	memset(p, 0, sizeof *p);
}
