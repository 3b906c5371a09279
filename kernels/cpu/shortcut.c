// darknet's shortcut of two maps of different sizes (see ops.h).  Plain
// loops: it runs once per residual block and moves only memory.
#include <string.h>
#include "ops.h"

static int imin(int a, int b) { return a < b ? a : b; }

// ---- reference ------------------------------------------------------------
// Gathers output by output (the fast path scatters a onto y): y[n, c, h, w]
// receives a[n, c, j*stride, i*stride] when h = j*sample, w = i*sample with
// c < min(C, Ca), j < min(H, Ha), i < min(W, Wa).

// The cell of a added to y's cell (h, w), or -1.
static long shortcut_src_ref(const ShortcutShape *s, int c, int h, int w)
{
	int stride = s->Wa / s->W > 1 ? s->Wa / s->W : 1;
	int sample = s->W / s->Wa > 1 ? s->W / s->Wa : 1;
	if (c >= s->Ca || h % sample != 0 || w % sample != 0)
		return -1;
	int j = h / sample, i = w / sample;   // j < H and i < W: h < H, w < W
	if (j >= s->Ha || i >= s->Wa || j * stride >= s->Ha || i * stride >= s->Wa)
		return -1;   // (the last two hold whenever H/Ha and W/Wa agree)
	return ((long)c * s->Ha + (long)j * stride) * s->Wa + (long)i * stride;
}

void shortcut_forward_ref(const ShortcutShape *s, const float *x, const float *a,
                          float *y)
{
	for (int n = 0; n < s->N; n++)
		for (int c = 0; c < s->C; c++)
			for (int h = 0; h < s->H; h++)
				for (int w = 0; w < s->W; w++) {
					size_t o = (((size_t)n * s->C + c) * s->H + h) * s->W + w;
					long src = shortcut_src_ref(s, c, h, w);
					y[o] = x[o];
					if (src >= 0)
						y[o] += a[(size_t)n * s->Ca * s->Ha * s->Wa + (size_t)src];
				}
}

// dx = dy; da = dy at the cell of y each cell of a was added to, 0 elsewhere
void shortcut_backward_ref(const ShortcutShape *s, const float *dy, float *dx,
                           float *da)
{
	size_t ny = (size_t)s->N * s->C * s->H * s->W;
	if (dx)
		for (size_t o = 0; o < ny; o++)
			dx[o] = dy[o];
	if (!da)
		return;
	size_t na = (size_t)s->N * s->Ca * s->Ha * s->Wa, per_a = na / (s->N ? s->N : 1);
	for (size_t e = 0; e < na; e++)
		da[e] = 0.0f;
	for (int n = 0; n < s->N; n++)
		for (int c = 0; c < s->C; c++)
			for (int h = 0; h < s->H; h++)
				for (int w = 0; w < s->W; w++) {
					long src = shortcut_src_ref(s, c, h, w);
					if (src >= 0)
						da[(size_t)n * per_a + (size_t)src] =
							dy[(((size_t)n * s->C + c) * s->H + h) * s->W + w];
				}
}

// ---- fast path ------------------------------------------------------------

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
