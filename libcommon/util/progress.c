#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "progress.h"
#include "timer.h"

static int forced = -1;

void progress_force(int on)
{
	forced = on;
}

static int wanted(void)
{
	if (forced >= 0)
		return forced;
	const char *e = getenv("CNNPIPE_PROGRESS");
	if (e && *e)
		return strcmp(e, "0") != 0;
	return isatty(2);
}

static void draw(Progress *p, int final)
{
	double t = now_seconds() - p->t0;
	double rate = t > 0 ? p->done / t : 0;
	if (p->total) {
		int width = 30, fill = (int)(width * (double)p->done / p->total);
		if (fill > width)
			fill = width;
		fprintf(stderr, "\r%s [%.*s%*s] %llu/%llu %.1f/s", p->label, fill,
		        "##############################", width - fill, "",
		        (unsigned long long)p->done, (unsigned long long)p->total, rate);
	} else {
		fprintf(stderr, "\r%s %llu %.1f/s", p->label,
		        (unsigned long long)p->done, rate);
	}
	if (final)
		fputc('\n', stderr);
	fflush(stderr);
}

void progress_start(Progress *p, const char *label, uint64_t total)
{
	memset(p, 0, sizeof *p);
	p->label = label;
	p->total = total;
	p->on = wanted();
	p->t0 = p->last = now_seconds();
}

void progress_update(Progress *p, uint64_t done)
{
	p->done = done;
	if (!p->on)
		return;
	double t = now_seconds();
	if (t - p->last < 0.2)   // at most 5 redraws a second
		return;
	p->last = t;
	draw(p, 0);
}

void progress_end(Progress *p)
{
	if (p->on)
		draw(p, 1);
	p->on = 0;
}
