// darknet's shortcut of two maps of different sizes (see ops.h).  Plain
// loops: it runs once per residual block and moves only memory.
#include <string.h>
#include "ops.h"

static int imin(int a, int b) { return a < b ? a : b; }

void shortcut_forward(const ShortcutShape *s, const float *x, const float *a,
                      float *y)
{
	size_t n = (size_t)s->N * s->C * s->H * s->W;
	if (y != x)
		memcpy(y, x, n * sizeof *y);
	int stride = s->Wa / s->W > 1 ? s->Wa / s->W : 1;
	int sample = s->W / s->Wa > 1 ? s->W / s->Wa : 1;
	int mc = imin(s->C, s->Ca), mh = imin(s->H, s->Ha), mw = imin(s->W, s->Wa);
	for (int b = 0; b < s->N; b++)
		for (int c = 0; c < mc; c++) {
			float *yp = y + ((size_t)b * s->C + c) * s->H * s->W;
			const float *ap = a + ((size_t)b * s->Ca + c) * s->Ha * s->Wa;
			for (int j = 0; j < mh; j++)
				for (int i = 0; i < mw; i++)
					yp[(size_t)j * sample * s->W + (size_t)i * sample] +=
						ap[(size_t)j * stride * s->Wa + (size_t)i * stride];
		}
}

void shortcut_backward(const ShortcutShape *s, const float *dy, float *dx,
                       float *da)
{
	size_t n = (size_t)s->N * s->C * s->H * s->W;
	if (dx && dx != dy)
		memcpy(dx, dy, n * sizeof *dx);
	if (!da)
		return;
	memset(da, 0, (size_t)s->N * s->Ca * s->Ha * s->Wa * sizeof *da);
	int stride = s->Wa / s->W > 1 ? s->Wa / s->W : 1;
	int sample = s->W / s->Wa > 1 ? s->W / s->Wa : 1;
	int mc = imin(s->C, s->Ca), mh = imin(s->H, s->Ha), mw = imin(s->W, s->Wa);
	for (int b = 0; b < s->N; b++)
		for (int c = 0; c < mc; c++) {
			const float *gp = dy + ((size_t)b * s->C + c) * s->H * s->W;
			float *ap = da + ((size_t)b * s->Ca + c) * s->Ha * s->Wa;
			for (int j = 0; j < mh; j++)
				for (int i = 0; i < mw; i++)
					ap[(size_t)j * stride * s->Wa + (size_t)i * stride] +=
						gp[(size_t)j * sample * s->W + (size_t)i * sample];
		}
}
