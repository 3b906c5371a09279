// The ordered parallel map (ordered.h).  Item i uses slot (i - lo) % window:
// a worker claims the next item only once the consumer has released the
// slot's previous item (i - window), and the consumer waits for its item's
// slot to be marked done.
#include <pthread.h>
#include <stdlib.h>
#include "alloc.h"
#include "err.h"
#include "ordered.h"

typedef struct {
	const OrderedMap *m;
	size_t lo, hi, window;
	unsigned char **slot;
	int *done;
	size_t next_claim, next_consume;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_done;
} Pool;

static void *state_new(const OrderedMap *m)
{
	return m->state_size ? xcalloc(1, m->state_size) : NULL;
}

static void state_end(const OrderedMap *m, void *state)
{
	if (state && m->state_free)
		m->state_free(state);
	free(state);
}

static void *worker(void *arg)
{
	Pool *p = arg;
	void *state = state_new(p->m);
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->next_claim < p->hi && p->next_claim >= p->next_consume + p->window)
			pthread_cond_wait(&p->cv_work, &p->mu);
		if (p->next_claim >= p->hi) {
			pthread_mutex_unlock(&p->mu);
			state_end(p->m, state);
			return NULL;
		}
		size_t i = p->next_claim++;
		pthread_mutex_unlock(&p->mu);
		size_t k = (i - p->lo) % p->window;
		p->m->work(p->m->ctx, i, p->slot[k], state);
		pthread_mutex_lock(&p->mu);
		p->done[k] = 1;
		pthread_cond_broadcast(&p->cv_done);
		pthread_mutex_unlock(&p->mu);
	}
}

void ordered_map(const OrderedMap *m, size_t lo, size_t hi, int workers, size_t window)
{
	if (workers < 0)
		workers = 0;
	Pool p = { .m = m, .lo = lo, .hi = hi, .window = workers && window ? window : 1,
	           .next_claim = lo, .next_consume = lo };
	p.slot = xcalloc(p.window, sizeof *p.slot);
	for (size_t k = 0; k < p.window; k++)
		p.slot[k] = xcalloc(1, m->slot_size ? m->slot_size : 1);
	p.done = xcalloc(p.window, sizeof *p.done);
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv_work, NULL);
	pthread_cond_init(&p.cv_done, NULL);
	pthread_t *tid = xcalloc(workers ? (size_t)workers : 1, sizeof *tid);
	for (int t = 0; t < workers; t++)
		if (pthread_create(&tid[t], NULL, worker, &p) != 0)
			die("cannot start a thread");

	void *state = workers ? NULL : state_new(m);   // the calling thread's, for workers == 0
	for (size_t i = lo; i < hi; i++) {
		size_t k = (i - lo) % p.window;
		if (workers) {
			pthread_mutex_lock(&p.mu);
			while (!p.done[k])
				pthread_cond_wait(&p.cv_done, &p.mu);
			pthread_mutex_unlock(&p.mu);
		} else {
			m->work(m->ctx, i, p.slot[k], state);
		}
		m->consume(m->ctx, i, p.slot[k]);
		if (workers) {
			pthread_mutex_lock(&p.mu);
			p.done[k] = 0;
			p.next_consume = i + 1;
			pthread_cond_broadcast(&p.cv_work);
			pthread_mutex_unlock(&p.mu);
		}
	}
	for (int t = 0; t < workers; t++)
		pthread_join(tid[t], NULL);
	state_end(m, state);
	pthread_cond_destroy(&p.cv_done);
	pthread_cond_destroy(&p.cv_work);
	pthread_mutex_destroy(&p.mu);
	for (size_t k = 0; k < p.window; k++)
		free(p.slot[k]);
	free(p.slot);
	free(p.done);
	free(tid);
}
