// fast.ai's training augmentation (augment.h).  Sources of the semantics:
// fastai/transforms.py of fastai 0.7 (RandomScale, RandomRotate,
// RandomLighting, RandomFlip, RandomDihedral, RandomCrop, scale_min,
// rotate_cv, lighting, dihedral, image_gen, transforms_side_on).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "augment.h"
#include "image_geom.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"

void aug_config_default(AugConfig *c, int sz)
{
	c->size = sz;
	c->max_zoom = AUG_MAX_ZOOM;
	c->deg = AUG_DEG;
	c->b = AUG_LIGHT_B;
	c->c = AUG_LIGHT_C;
	c->flip = AUG_SIDE_ON;
}

// ---- draws -------------------------------------------------------------------

void aug_draw(const AugConfig *c, Rng *r, int h, int w, AugParams *p)
{
	float u_scale = rng_uniform(r);
	float mult = rng_range(r, 1.0f, (float)c->max_zoom);
	float deg = rng_range(r, (float)-c->deg, (float)c->deg);     // rand0(deg)
	float u_rot = rng_uniform(r);
	float b = rng_range(r, (float)-c->b, (float)c->b);           // rand0(b)
	float c0 = rng_range(r, (float)-c->c, (float)c->c);          // rand0(c)
	int k = (int)rng_below(r, 4);                                 // randint(0, 3)
	float u_flip = rng_uniform(r);
	float u_row = rng_uniform(r), u_col = rng_uniform(r);        // RandomCrop

	// RandomScale: mult = uniform(1, max_zoom) if random() < p else 1;
	// new_sz = int(mult*sz) (truncation; the product in double as Python's).
	p->mult = u_scale < AUG_P_SCALE ? mult : 1.0f;
	p->new_sz = (int)floor((double)p->mult * c->size);   // >= size: mult >= 1
	fastai_scale_dims(w, h, p->new_sz, &p->tw, &p->th);
	p->deg = u_rot < AUG_P_ROTATE ? deg : 0.0f;
	p->b = b;
	p->c = c0 < 0 ? (float)(-1.0 / ((double)c0 - 1.0)) : 1.0f + c0;
	p->rot90 = c->flip == AUG_TOP_DOWN ? k : 0;
	p->flip = c->flip != AUG_NO_FLIP && u_flip < AUG_P_FLIP;
	int H = p->rot90 & 1 ? p->tw : p->th, W = p->rot90 & 1 ? p->th : p->tw;
	// start = np.floor(rand*(r - sz)): never the last position, as in fast.ai.
	p->y0 = (int)floor((double)u_row * (H - c->size));
	p->x0 = (int)floor((double)u_col * (W - c->size));
}

// splitmix64's output function (Steele, Lea and Flood, 2014): a bijection
// of 64 bits that mixes every input bit into every output bit.
static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void aug_record_rng(Rng *r, uint64_t seed, uint64_t epoch, uint64_t index)
{
	uint64_t h = mix64(mix64(mix64(seed) ^ epoch) ^ index);
	rng_seed(r, h, mix64(h ^ 0x7265636f7264ull));   // "record"
}

void aug_shuffle(uint32_t *perm, uint32_t n, uint64_t seed, uint64_t epoch)
{
	uint64_t h = mix64(mix64(seed ^ 0x73687566666c65ull) ^ epoch);   // "shuffle"
	Rng r;
	rng_seed(&r, h, mix64(h));
	for (uint32_t i = 0; i < n; i++)
		perm[i] = i;
	for (uint32_t i = n; i > 1; i--) {
		uint32_t j = rng_below(&r, i);
		uint32_t t = perm[i - 1];
		perm[i - 1] = perm[j];
		perm[j] = t;
	}
}

// ---- transforms --------------------------------------------------------------

// One axis of an area resize, n source pixels to m: output i covers
// [i·n/m, (i+1)·n/m), clipped to n (cv2's cellWidth), and source
// pixel j weighs its overlap / the footprint's length.  Writes, for each
// i, first[i], cnt[i] and the weights wt[i·kmax ..], kmax = ceil(n/m) + 1.
static int area_kmax(int n, int m) { return (n + m - 1) / m + 1; }

static void area_axis(int n, int m, int *first, int *cnt, float *wt)
{
	int kmax = area_kmax(n, m);
	for (int i = 0; i < m; i++) {
		// i·n/m correctly rounded: a boundary on a pixel edge is exact
		double a = (double)i * n / m, b = (double)(i + 1) * n / m;
		if (b > n)
			b = n;
		int j0 = (int)floor(a), k = 0;
		for (int j = j0; j < n && j < b; j++) {
			double lo = j > a ? j : a, hi = j + 1 < b ? j + 1 : b;
			if (hi > lo && k < kmax)
				wt[(size_t)i * kmax + k++] = (float)((hi - lo) / (b - a));
			else if (k == 0)
				j0++;
		}
		first[i] = j0;
		cnt[i] = k;
	}
}

void aug_scale(const uint8_t *src, int h, int w, float *dst, int th, int tw, float *tmp)
{
	if (th == h && tw == w) {
		for (size_t q = 0; q < (size_t)h * w * 3; q++)
			dst[q] = src[q] / 255.0f;
		return;
	}
	int kx = area_kmax(w, tw), ky = area_kmax(h, th);
	int *xf = xmalloc_array((size_t)tw, sizeof(int)), *xc = xmalloc_array((size_t)tw, sizeof(int));
	int *yf = xmalloc_array((size_t)th, sizeof(int)), *yc = xmalloc_array((size_t)th, sizeof(int));
	float *xw = xmalloc_array((size_t)tw * kx, sizeof(float));
	float *yw = xmalloc_array((size_t)th * ky, sizeof(float));
	area_axis(w, tw, xf, xc, xw);
	area_axis(h, th, yf, yc, yw);
	// rows: (h, w, 3) u8 -> tmp (h, tw, 3), in units of 1/255
	for (int y = 0; y < h; y++)
		for (int x = 0; x < tw; x++)
			for (int ch = 0; ch < 3; ch++) {
				float acc = 0;
				for (int k = 0; k < xc[x]; k++)
					acc += xw[(size_t)x * kx + k] * src[((size_t)y * w + xf[x] + k) * 3 + ch];
				tmp[((size_t)y * tw + x) * 3 + ch] = acc;
			}
	// columns: tmp -> dst (th, tw, 3), in [0, 1]
	for (int y = 0; y < th; y++)
		for (int x = 0; x < tw; x++)
			for (int ch = 0; ch < 3; ch++) {
				float acc = 0;
				for (int k = 0; k < yc[y]; k++)
					acc += yw[(size_t)y * ky + k] * tmp[((size_t)(yf[y] + k) * tw + x) * 3 + ch];
				dst[((size_t)y * tw + x) * 3 + ch] = acc / 255.0f;
			}
	free(xf);
	free(xc);
	free(yf);
	free(yc);
	free(xw);
	free(yw);
}

// cv2's BORDER_REFLECT: ... c b a | a b c ... x y z | z y x ...
static int reflect(int i, int n)
{
	int p = 2 * n;
	i %= p;
	if (i < 0)
		i += p;
	return i < n ? i : p - 1 - i;
}

void aug_rotate(const float *src, int h, int w, float deg, float *dst)
{
	// getRotationMatrix2D((cx, cy), deg, 1) = [[a, b, (1-a)cx - b cy],
	// [-b, a, b cx + (1-a) cy]], a = cos, b = sin, maps source to
	// destination; warpAffine samples the source at its inverse.
	double t = deg * (M_PI / 180.0), a = cos(t), b = sin(t);
	int cx = w / 2, cy = h / 2;   // rotate_cv: (c//2, r//2)
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			double dx = x - cx, dy = y - cy;
			double sx = a * dx - b * dy + cx, sy = b * dx + a * dy + cy;
			double fx0 = floor(sx), fy0 = floor(sy);
			float fx = (float)(sx - fx0), fy = (float)(sy - fy0);
			int x0 = (int)fx0, y0 = (int)fy0;
			int xa = reflect(x0, w), xb = reflect(x0 + 1, w);
			int ya = reflect(y0, h), yb = reflect(y0 + 1, h);
			const float *p00 = src + ((size_t)ya * w + xa) * 3;
			const float *p01 = src + ((size_t)ya * w + xb) * 3;
			const float *p10 = src + ((size_t)yb * w + xa) * 3;
			const float *p11 = src + ((size_t)yb * w + xb) * 3;
			float *d = dst + ((size_t)y * w + x) * 3;
			for (int ch = 0; ch < 3; ch++)
				d[ch] = (1 - fy) * ((1 - fx) * p00[ch] + fx * p01[ch]) +
				        fy * ((1 - fx) * p10[ch] + fx * p11[ch]);
		}
}

void aug_lighting(float *x, size_t n, float b, float c)
{
	double sum = 0;
	for (size_t q = 0; q < n; q++)
		sum += x[q];
	float m = n ? (float)(sum / (double)n) : 0.0f;
	for (size_t q = 0; q < n; q++) {
		float v = (x[q] - m) * c + m + b;
		x[q] = v < 0 ? 0.0f : v > 1 ? 1.0f : v;
	}
}

void aug_dihedral(const float *src, int h, int w, int k, int flip, float *dst)
{
	k &= 3;
	int H = k & 1 ? w : h, W = k & 1 ? h : w;
	for (int i = 0; i < H; i++)
		for (int j = 0; j < W; j++) {
			int jj = flip ? W - 1 - j : j;   // fliplr: undone first
			int sy, sx;                      // then np.rot90(src, k)
			switch (k) {
			case 0: sy = i; sx = jj; break;
			case 1: sy = jj; sx = w - 1 - i; break;
			case 2: sy = h - 1 - i; sx = w - 1 - jj; break;
			default: sy = h - 1 - jj; sx = i; break;
			}
			memcpy(dst + ((size_t)i * W + j) * 3, src + ((size_t)sy * w + sx) * 3,
			       3 * sizeof(float));
		}
}

void aug_flip(const float *src, int h, int w, float *dst)
{
	aug_dihedral(src, h, w, 0, 1, dst);
}

void aug_crop(const float *src, int h, int w, int y0, int x0, int sz, uint8_t *dst)
{
	(void)h;
	for (int y = 0; y < sz; y++)
		for (int x = 0; x < sz * 3; x++) {
			float v = floorf(src[((size_t)(y0 + y) * w + x0) * 3 + x] * 255.0f + 0.5f);
			dst[(size_t)y * sz * 3 + x] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
		}
}

static float *grow(float *p, size_t *cap, size_t n)
{
	if (n > *cap) {
		free(p);
		p = xmalloc_array(n, sizeof(float));
		*cap = n;
	}
	return p;
}

void aug_scratch_free(AugScratch *s)
{
	free(s->a);
	free(s->b);
	free(s->tmp);
	memset(s, 0, sizeof *s);
}

void aug_apply(const AugParams *p, int sz, const uint8_t *src, int h, int w,
               uint8_t *out, AugScratch *s)
{
	int H = p->th, W = p->tw;
	size_t n = (size_t)H * W * 3;
	s->a = grow(s->a, &s->cap_a, n);
	s->b = grow(s->b, &s->cap_b, n);
	s->tmp = grow(s->tmp, &s->cap_tmp, (size_t)h * W * 3);
	float *x = s->a, *y = s->b, *t;
	aug_scale(src, h, w, x, H, W, s->tmp);
	if (p->deg != 0) {
		aug_rotate(x, H, W, p->deg, y);
		t = x, x = y, y = t;
	}
	if (p->b != 0 || p->c != 1)
		aug_lighting(x, n, p->b, p->c);
	if (p->rot90 || p->flip) {
		aug_dihedral(x, H, W, p->rot90, p->flip, y);
		t = x, x = y, y = t;
		if (p->rot90 & 1) {
			int d = H;
			H = W;
			W = d;
		}
	}
	aug_crop(x, H, W, p->y0, p->x0, sz, out);
}

// ---- orders ----------------------------------------------------------------------

void aug_order_init(AugOrder *o, uint32_t n, uint64_t seed)
{
	memset(o, 0, sizeof *o);
	o->n = n;
	o->seed = seed;
	pthread_mutex_init(&o->mu, NULL);
	for (int k = 0; k < 2; k++) {
		o->epoch[k] = -1;
		o->perm[k] = xmalloc_array(n ? n : 1, sizeof(uint32_t));
	}
}

uint32_t aug_order_source(AugOrder *o, uint64_t e, uint32_t i)
{
	pthread_mutex_lock(&o->mu);
	int k = o->epoch[0] == (int64_t)e ? 0 : o->epoch[1] == (int64_t)e ? 1 : -1;
	if (k < 0) {
		k = o->next;
		o->next ^= 1;
		aug_shuffle(o->perm[k], o->n, o->seed, e);
		o->epoch[k] = (int64_t)e;
	}
	uint32_t v = o->perm[k][i];
	pthread_mutex_unlock(&o->mu);
	return v;
}

void aug_order_free(AugOrder *o)
{
	pthread_mutex_destroy(&o->mu);
	free(o->perm[0]);
	free(o->perm[1]);
}

// ---- sources ----------------------------------------------------------------------

// The checks of one record; "" when it is a good source, else the reason.
static const char *check_record(const Record *r, int labelled, int sz, char *why, size_t len)
{
	Tensor *im = record_find(r, "image"), *lab = record_find(r, "label");
	Tensor *nm = record_find(r, "name");
	if (!im || im->dtype != DT_U8 || im->ndim != 3 || im->dims[2] != 3)
		return "no u8 image tensor of shape (H, W, 3)";
	if (im->dims[0] > AUG_MAX_SIDE || im->dims[1] > AUG_MAX_SIDE) {
		snprintf(why, len, "image (%lld, %lld, 3) is over %d pixels a side",
		         (long long)im->dims[0], (long long)im->dims[1], AUG_MAX_SIDE);
		return why;
	}
	// RandomScale scales the shorter side to int(mult*sz) >= sz whatever the
	// source's size, so a photo smaller than the crop is scaled up, as
	// fast.ai does with the 200-pixel photos it is given; only an empty one
	// is no photo.
	(void)sz;
	if (im->dims[0] < 1 || im->dims[1] < 1) {
		snprintf(why, len, "image (%lld, %lld, 3) has no pixels",
		         (long long)im->dims[0], (long long)im->dims[1]);
		return why;
	}
	if (labelled && (!lab || lab->dtype != DT_I32 || lab->ndim != 0))
		return "no label (an i32 scalar) in a labelled stream";
	if (nm && nm->dtype != DT_STR)
		return "name is not a str tensor";
	return "";
}

void aug_sources_read(AugSources *S, const char *path, int sz)
{
	memset(S, 0, sizeof *S);
	S->path = path;
	S->in_memory = strcmp(path, "-") == 0;
	Stream *s = S->in = xstream_open_read(path);
	const char *label = stream_path(s);
	const char *v = stream_meta_get(s, "kind");
	if (!v || strcmp(v, "images"))
		die("%s: not an images stream (kind=%s)", label, v ? v : "none");
	if ((v = stream_meta_get(s, "channels")) && strcmp(v, "3"))
		die("%s: images with %s channels, need 3", label, v);
	if ((v = stream_meta_get(s, "layout")) && strcmp(v, "HWC"))
		die("%s: layout %s, need HWC", label, v);
	v = stream_meta_get(s, "labelled");
	S->labelled = !v || strcmp(v, "0");
	Record r;
	record_init(&r);
	size_t cap = 0;
	for (;;) {
		uint64_t off = stream_tell(s);
		if (!xstream_read_record(s, &r))
			break;
		if (S->n == UINT32_MAX)
			die("%s: more than %u records", label, UINT32_MAX);
		char why[200];
		Tensor *nm = record_find(&r, "name");
		char name[512] = "";
		if (nm && nm->dtype == DT_STR)
			tensor_str(nm, name, sizeof name);
		const char *bad = check_record(&r, S->labelled, sz, why, sizeof why);
		if (*bad)
			die("%s: record %u%s%s%s: %s", label, S->n, nm ? " (" : "", name,
			    nm ? ")" : "", bad);
		if (S->n == cap) {
			cap = cap ? 2 * cap : 1024;
			S->src = xrealloc(S->src, cap * sizeof *S->src);
		}
		AugSource *a = &S->src[S->n++];
		memset(a, 0, sizeof *a);
		Tensor *im = record_find(&r, "image");
		a->offset = off;
		a->h = (int)im->dims[0];
		a->w = (int)im->dims[1];
		if (S->labelled)
			a->label = *(const int32_t *)record_find(&r, "label")->data;
		if (nm) {
			a->name = xmalloc(nm->nbytes + 1);
			memcpy(a->name, nm->data, nm->nbytes);
			a->name[nm->nbytes] = 0;
		}
		if (S->in_memory) {
			a->px = xmalloc(im->nbytes);
			memcpy(a->px, im->data, im->nbytes);
		}
	}
	record_free(&r);
}

void aug_sources_free(AugSources *S)
{
	for (uint32_t i = 0; i < S->n; i++) {
		free(S->src[i].name);
		free(S->src[i].px);
	}
	free(S->src);
	stream_close(S->in);
	memset(S, 0, sizeof *S);
}

const uint8_t *aug_source_pixels(const AugSources *S, uint32_t i, AugReader *rd,
                                 char *err, size_t errlen)
{
	const AugSource *a = &S->src[i];
	if (S->in_memory)
		return a->px;
	if (!rd->init) {
		record_init(&rd->r);
		rd->init = 1;
	}
	if (!rd->in && !(rd->in = stream_open_read(S->path))) {
		snprintf(err, errlen, "%s", stream_last_error());
		return NULL;
	}
	if (stream_seek_record(rd->in, a->offset, i) < 0 ||
	    stream_read_record(rd->in, &rd->r) != 1) {
		snprintf(err, errlen, "%s", stream_error(rd->in));
		return NULL;
	}
	Tensor *im = record_find(&rd->r, "image");
	if (!im || im->dtype != DT_U8 || im->ndim != 3 || im->dims[0] != a->h ||
	    im->dims[1] != a->w || im->dims[2] != 3) {
		snprintf(err, errlen, "%s: record %u: changed since it was indexed",
		         S->path, i);
		return NULL;
	}
	return im->data;
}

void aug_reader_free(AugReader *rd)
{
	stream_close(rd->in);
	if (rd->init)
		record_free(&rd->r);
	memset(rd, 0, sizeof *rd);
}
