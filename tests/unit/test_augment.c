// The augmentation transforms (libcommon/image/augment.c) with fixed
// parameters on cases whose answers are known: area resizes against a 2-D
// integration, rotations by 90 and 180 degrees against index maps (the
// direction and the (w/2, h/2) centre of cv2/fast.ai), the reflected
// border, lighting, the eight dihedral maps, the crop's rounding; the
// draws, the generators and shuffles; sources read by index.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "formats/stream.h"
#include "libcommon/image/augment.h"
#include "libcommon/util/err.h"
#include "libcommon/util/rng.h"

static float maxdiff(const float *a, const float *b, size_t n)
{
	float m = 0;
	for (size_t i = 0; i < n; i++)
		if (fabsf(a[i] - b[i]) > m)
			m = fabsf(a[i] - b[i]);
	return m;
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	Rng r;
	rng_seed(&r, seed, 1);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rng_below(&r, 256);
}

// The area resize as a 2-D integral: each output pixel the overlap-weighted
// mean of the source over its footprint (double, per pixel, no separation).
static void area_ref(const uint8_t *src, int h, int w, double *dst, int th, int tw)
{
	for (int i = 0; i < th; i++)
		for (int j = 0; j < tw; j++) {
			double y0 = (double)i * h / th, y1 = (double)(i + 1) * h / th;
			double x0 = (double)j * w / tw, x1 = (double)(j + 1) * w / tw;
			double acc[3] = { 0, 0, 0 }, area = 0;
			for (int y = 0; y < h; y++) {
				double oy = fmin(y + 1, y1) - fmax(y, y0);
				if (oy <= 0)
					continue;
				for (int x = 0; x < w; x++) {
					double ox = fmin(x + 1, x1) - fmax(x, x0);
					if (ox <= 0)
						continue;
					for (int c = 0; c < 3; c++)
						acc[c] += oy * ox * src[((size_t)y * w + x) * 3 + c];
					area += oy * ox;
				}
			}
			for (int c = 0; c < 3; c++)
				dst[((size_t)i * tw + j) * 3 + c] = acc[c] / area / 255.0;
		}
}

static void test_scale(void)
{
	// down, up, mixed ratios, and one axis unchanged
	static const int cases[][4] = { { 7, 9, 3, 4 }, { 4, 4, 2, 2 }, { 5, 6, 11, 13 },
	                                { 40, 40, 52, 52 }, { 33, 45, 40, 54 }, { 8, 12, 8, 10 },
	                                { 1, 3, 2, 6 }, { 30, 20, 17, 11 } };
	int ok = 1;
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		int h = cases[k][0], w = cases[k][1], th = cases[k][2], tw = cases[k][3];
		uint8_t *src = malloc((size_t)h * w * 3);
		float *dst = malloc((size_t)th * tw * 3 * sizeof(float));
		float *tmp = malloc((size_t)h * tw * 3 * sizeof(float));
		double *ref = malloc((size_t)th * tw * 3 * sizeof(double));
		fill_random(src, (size_t)h * w * 3, k);
		aug_scale(src, h, w, dst, th, tw, tmp);
		area_ref(src, h, w, ref, th, tw);
		for (size_t i = 0; i < (size_t)th * tw * 3; i++)
			if (fabs(dst[i] - ref[i]) > 2e-6) {
				ok = 0;
				fprintf(stderr, "  scale %dx%d -> %dx%d: value %zu is %g, want %g\n",
				        h, w, th, tw, i, dst[i], ref[i]);
				break;
			}
		free(src);
		free(dst);
		free(tmp);
		free(ref);
	}
	CHECK(ok);
	// 2x2 blocks: exact means; the same size: exact x/255
	const uint8_t b[4 * 2 * 3] = { 0, 10, 20, 4, 30, 40, 8, 50, 60, 12, 70, 80,
	                               16, 90, 100, 20, 110, 120, 24, 130, 140, 28, 150, 160 };
	float o[2 * 1 * 3], tmp[4 * 1 * 3];
	aug_scale(b, 2, 4, o, 1, 2, tmp);
	CHECK(fabsf(o[0] * 255 - (0 + 4 + 16 + 20) / 4.0f) < 1e-4f);
	CHECK(fabsf(o[5] * 255 - (60 + 80 + 140 + 160) / 4.0f) < 1e-4f);
	float same[24];
	aug_scale(b, 2, 4, same, 2, 4, NULL);
	int exact = 1;
	for (int i = 0; i < 24; i++)
		exact &= same[i] == b[i] / 255.0f;
	CHECK(exact);
}

static void test_rotate(void)
{
	// 0 degrees: the image itself
	enum { H = 5, W = 5 };
	float src[H * W * 3], dst[H * W * 3];
	for (int i = 0; i < H * W * 3; i++)
		src[i] = (float)((i * 37) % 101) / 100.0f;
	aug_rotate(src, H, W, 0, dst);
	CHECK(maxdiff(src, dst, H * W * 3) == 0);
	// +90 about (2, 2) of a 5x5 image: np.rot90 (counter-clockwise),
	// dst[y][x] = src[x][W-1-y]
	aug_rotate(src, H, W, 90, dst);
	float want[H * W * 3];
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++)
			for (int c = 0; c < 3; c++)
				want[(y * W + x) * 3 + c] = src[(x * W + (W - 1 - y)) * 3 + c];
	CHECK(maxdiff(dst, want, H * W * 3) < 1e-6f);
	// 180 about (w/2, h/2) = (2, 1) of a 3x4 image (fast.ai's c//2, r//2):
	// dst(x, y) = src(4 - x, 2 - y); x = 0 reads column 4, reflected to 3.
	enum { h = 3, w = 4 };
	float s2[h * w * 3], d2[h * w * 3], w2[h * w * 3];
	for (int i = 0; i < h * w * 3; i++)
		s2[i] = (float)i / (h * w * 3);
	aug_rotate(s2, h, w, 180, d2);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			int sx = 4 - x == 4 ? 3 : 4 - x, sy = 2 - y;
			for (int c = 0; c < 3; c++)
				w2[(y * w + x) * 3 + c] = s2[(sy * w + sx) * 3 + c];
		}
	CHECK(maxdiff(d2, w2, h * w * 3) < 1e-6f);
	// A constant image stays constant at any angle: the border is reflected,
	// never black.
	enum { N = 9 * 13 * 3 };
	float k[N], dk[N], kk[N];
	for (int i = 0; i < N; i++)
		k[i] = 0.625f;
	aug_rotate(k, 9, 13, 37.5f, dk);
	for (int i = 0; i < N; i++)
		kk[i] = 0.625f;
	CHECK(maxdiff(dk, kk, N) < 1e-6f);
	// The centre (w/2, h/2) = (6, 4) stays where it is.
	float c3[N], dc[N];
	for (int i = 0; i < N; i++)
		c3[i] = (float)(i % 97) / 97.0f;
	aug_rotate(c3, 9, 13, -7.25f, dc);
	int ctr = (4 * 13 + 6) * 3;
	CHECK(fabsf(dc[ctr] - c3[ctr]) < 1e-6f && fabsf(dc[ctr + 2] - c3[ctr + 2]) < 1e-6f);
}

static void test_lighting(void)
{
	float x[6] = { 0.2f, 0.4f, 0.6f, 0.8f, 0.0f, 1.0f };   // mean 0.5
	aug_lighting(x, 6, 0.1f, 2.0f);   // (x - 0.5)·2 + 0.6, clipped
	const float want[6] = { 0.0f, 0.4f, 0.8f, 1.0f, 0.0f, 1.0f };
	CHECK(maxdiff(x, want, 6) < 1e-6f);
	float y[3] = { 0.3f, 0.3f, 0.6f };   // mean 0.4
	aug_lighting(y, 3, -0.05f, 1 / 1.05f);
	CHECK(fabsf(y[2] - ((0.6f - 0.4f) / 1.05f + 0.4f - 0.05f)) < 1e-6f);
}

static void test_dihedral(void)
{
	// a 2x3 image whose pixel (i, j) holds 3i + j in every channel
	float src[2 * 3 * 3], dst[2 * 3 * 3];
	for (int p = 0; p < 6; p++)
		for (int c = 0; c < 3; c++)
			src[p * 3 + c] = (float)p;
	// np.rot90(a, k) of [[0,1,2],[3,4,5]], then np.fliplr
	static const float rot[4][6] = { { 0, 1, 2, 3, 4, 5 }, { 2, 5, 1, 4, 0, 3 },
	                                 { 5, 4, 3, 2, 1, 0 }, { 3, 0, 4, 1, 5, 2 } };
	static const float flip[4][6] = { { 2, 1, 0, 5, 4, 3 }, { 5, 2, 4, 1, 3, 0 },
	                                  { 3, 4, 5, 0, 1, 2 }, { 0, 3, 1, 4, 2, 5 } };
	int ok = 1;
	for (int k = 0; k < 4; k++)
		for (int f = 0; f < 2; f++) {
			aug_dihedral(src, 2, 3, k, f, dst);
			for (int p = 0; p < 6; p++)
				ok &= dst[p * 3 + 1] == (f ? flip : rot)[k][p];
		}
	CHECK(ok);
	aug_flip(src, 2, 3, dst);
	ok = 1;
	for (int p = 0; p < 6; p++)
		ok &= dst[p * 3] == flip[0][p];
	CHECK(ok);
}

static void test_crop(void)
{
	enum { H = 3, W = 4 };
	float src[H * W * 3];
	for (int i = 0; i < H * W * 3; i++)
		src[i] = (float)i / 255.0f;
	src[(1 * W + 1) * 3] = 0.5f / 255.0f;      // rounds up
	src[(1 * W + 1) * 3 + 1] = 0.49f / 255.0f; // down
	src[(1 * W + 2) * 3] = 1.0001f;            // clipped
	src[(2 * W + 1) * 3] = -0.01f;
	uint8_t out[2 * 2 * 3];
	aug_crop(src, H, W, 1, 1, 2, out);
	CHECK(out[0] == 1 && out[1] == 0 && out[2] == (1 * W + 1) * 3 + 2);
	CHECK(out[3] == 255 && out[4] == (1 * W + 2) * 3 + 1);
	CHECK(out[6] == 0 && out[9] == (2 * W + 2) * 3);
}

static void test_draw(void)
{
	AugConfig c;
	aug_config_default(&c, 32);
	CHECK(c.max_zoom == 1.1 && c.deg == 10 && c.b == 0.05 && c.c == 0.05 && c.flip == AUG_SIDE_ON);
	enum { N = 4000 };
	int scaled = 0, rotated = 0, flipped = 0, bad = 0;
	for (int i = 0; i < N; i++) {
		Rng r;
		aug_record_rng(&r, 5, 0, (uint64_t)i);
		AugParams p;
		aug_draw(&c, &r, 40, 50, &p);
		scaled += p.mult != 1;
		rotated += p.deg != 0;
		flipped += p.flip;
		bad += p.mult < 1 || p.mult >= 1.1f || p.new_sz != (int)floor((double)p.mult * 32);
		bad += fabsf(p.deg) > 10 || fabsf(p.b) > 0.05f || p.c < 1 / 1.05f - 1e-6f || p.c > 1.05f + 1e-6f;
		bad += p.rot90 != 0 || p.th != p.new_sz || fabs(p.tw - 1.25 * p.new_sz) >= 1;
		bad += p.y0 < 0 || p.y0 > p.th - 32 - (p.th > 32) || p.x0 < 0 || p.x0 > p.tw - 33;
	}
	CHECK(bad == 0);
	// within 4 sigma (sigma = sqrt(p(1-p)/N): 0.0068 for p 0.75, 0.0079 for 0.5)
	CHECK(fabs(scaled / (double)N - 0.75) < 0.028 && fabs(rotated / (double)N - 0.75) < 0.028);
	CHECK(fabs(flipped / (double)N - 0.5) < 0.032);
	// everything off: a plain random crop
	c.max_zoom = 1;
	c.deg = c.b = c.c = 0;
	c.flip = AUG_NO_FLIP;
	int plain = 1;
	for (int i = 0; i < 200; i++) {
		Rng r;
		aug_record_rng(&r, 1, 2, (uint64_t)i);
		AugParams p;
		aug_draw(&c, &r, 32, 45, &p);
		plain &= p.mult == 1 && p.new_sz == 32 && p.th == 32 && p.tw == 45 && p.deg == 0 &&
		         p.b == 0 && p.c == 1 && p.flip == 0 && p.rot90 == 0 && p.y0 == 0 &&
		         p.x0 >= 0 && p.x0 < 13;
	}
	CHECK(plain);
	// top-down: quarter turns, each about a quarter of the time
	aug_config_default(&c, 8);
	c.flip = AUG_TOP_DOWN;
	int k[4] = { 0 };
	for (int i = 0; i < N; i++) {
		Rng r;
		aug_record_rng(&r, 9, 1, (uint64_t)i);
		AugParams p;
		aug_draw(&c, &r, 8, 8, &p);
		k[p.rot90 & 3]++;
	}
	CHECK(fabs(k[0] / (double)N - 0.25) < 0.028 && fabs(k[3] / (double)N - 0.25) < 0.028);
}

static void test_apply_plain_crop(void)
{
	// No zoom, rotation, lighting or flip on a source whose shorter side is
	// sz: exactly the source's pixels in the crop window.
	AugConfig c;
	aug_config_default(&c, 16);
	c.max_zoom = 1;
	c.deg = c.b = c.c = 0;
	c.flip = AUG_NO_FLIP;
	enum { H = 16, W = 29 };
	uint8_t src[H * W * 3], out[16 * 16 * 3];
	fill_random(src, sizeof src, 3);
	AugScratch sc = { 0 };
	int ok = 1;
	for (int i = 0; i < 20; i++) {
		Rng r;
		aug_record_rng(&r, 0, 0, (uint64_t)i);
		AugParams p;
		aug_draw(&c, &r, H, W, &p);
		aug_apply(&p, 16, src, H, W, out, &sc);
		for (int y = 0; y < 16; y++)
			ok &= memcmp(out + y * 16 * 3, src + ((y + p.y0) * W + p.x0) * 3, 16 * 3) == 0;
	}
	CHECK(ok);
	// A full set of transforms keeps the output in range and the size right
	// (under ASan: no access outside the buffers), for odd turns too.
	aug_config_default(&c, 16);
	c.flip = AUG_TOP_DOWN;
	c.max_zoom = 1.5;
	c.deg = 45;
	for (int i = 0; i < 40; i++) {
		Rng r;
		aug_record_rng(&r, 7, 0, (uint64_t)i);
		AugParams p;
		aug_draw(&c, &r, H, W, &p);
		aug_apply(&p, 16, src, H, W, out, &sc);
	}
	aug_scratch_free(&sc);
}

static void test_rngs(void)
{
	Rng a, b;
	aug_record_rng(&a, 1, 2, 3);
	aug_record_rng(&b, 1, 2, 3);
	CHECK(rng_u32(&a) == rng_u32(&b));
	uint32_t first[4];
	const uint64_t args[4][3] = { { 1, 2, 3 }, { 2, 2, 3 }, { 1, 3, 3 }, { 1, 2, 4 } };
	for (int i = 0; i < 4; i++) {
		aug_record_rng(&a, args[i][0], args[i][1], args[i][2]);
		first[i] = rng_u32(&a);
	}
	CHECK(first[0] != first[1] && first[0] != first[2] && first[0] != first[3]);
	// a shuffle is a permutation, the same for the same (seed, epoch), and
	// another for another epoch
	enum { N = 1000 };
	uint32_t p[N], q[N], seen[N] = { 0 };
	aug_shuffle(p, N, 42, 0);
	aug_shuffle(q, N, 42, 0);
	CHECK(memcmp(p, q, sizeof p) == 0);
	int perm = 1;
	for (int i = 0; i < N; i++)
		perm &= p[i] < N && !seen[p[i]]++;
	CHECK(perm);
	aug_shuffle(q, N, 42, 1);
	CHECK(memcmp(p, q, sizeof p) != 0);
	aug_shuffle(q, N, 43, 0);
	CHECK(memcmp(p, q, sizeof p) != 0);
	uint32_t one = 7;
	aug_shuffle(&one, 1, 1, 1);
	CHECK(one == 0);
	aug_shuffle(NULL, 0, 1, 1);
	// the cached orders agree with the shuffles, in any order of asking
	AugOrder o;
	aug_order_init(&o, N, 42);
	int same = 1;
	const uint64_t epochs[] = { 0, 1, 0, 2, 2, 1, 5, 0 };
	for (size_t e = 0; e < sizeof epochs / sizeof epochs[0]; e++) {
		aug_shuffle(q, N, 42, epochs[e]);
		for (uint32_t i = 0; i < N; i += 37)
			same &= aug_order_source(&o, epochs[e], i) == q[i];
	}
	CHECK(same);
	aug_order_free(&o);
}

static char *tmp_path;

static void write_sources(const char *path, int small, const char *kind)
{
	Stream *w = xstream_open_write(path);
	stream_meta_set(w, "kind", kind);
	stream_meta_set(w, "labelled", "1");
	Record r;
	record_init(&r);
	for (int i = 0; i < 6; i++) {
		record_clear(&r);
		int64_t d[3] = { 8 + i, 11 - (i == 4 && small ? 5 : 0), 3 };
		uint8_t *px = record_add(&r, "image", DT_U8, 3, d, NULL);
		for (int64_t k = 0; k < d[0] * d[1] * 3; k++)
			px[k] = (uint8_t)(k * 3 + i);
		int32_t lab = i % 2;
		record_add(&r, "label", DT_I32, 0, NULL, &lab);
		char name[32];
		snprintf(name, sizeof name, "c/%d.jpg", i);
		record_add_str(&r, "name", name);
		xstream_write_record(w, &r);
	}
	xstream_finish(w);
	record_free(&r);
}

static void read_sources(void *sz)
{
	AugSources S;
	aug_sources_read(&S, tmp_path, *(int *)sz);
	aug_sources_free(&S);
}

static void test_sources(void)
{
	write_sources(tmp_path, 0, "images");
	AugSources S;
	aug_sources_read(&S, tmp_path, 8);
	CHECK(S.n == 6 && S.labelled && !S.in_memory);
	CHECK(S.src[3].h == 11 && S.src[3].w == 11 && S.src[3].label == 1);
	CHECK(strcmp(S.src[5].name, "c/5.jpg") == 0 && S.src[5].px == NULL);
	AugReader rd = { 0 };
	int ok = 1;
	char err[300];
	const int order[] = { 5, 0, 3, 3, 1, 4, 2 };
	for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
		int i = order[k];
		const uint8_t *px = aug_source_pixels(&S, (uint32_t)i, &rd, err, sizeof err);
		ok &= px && px[0] == (uint8_t)i && px[5] == (uint8_t)(15 + i);
	}
	CHECK(ok);
	aug_reader_free(&rd);
	aug_sources_free(&S);
	// the crop size above a source's shorter side: read, to be scaled up
	write_sources(tmp_path, 1, "images");
	int sz = 13;
	CHECK(check_dies(read_sources, &sz, 0, ""));   // exits 0, no message
	write_sources(tmp_path, 0, "activations");
	sz = 8;
	CHECK(check_dies(read_sources, &sz, 1, "not an images stream (kind=activations)"));
	unlink(tmp_path);
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, "test_augment");
	tmp_path = check_tmp("test_augment");
	test_scale();
	test_rotate();
	test_lighting();
	test_dihedral();
	test_crop();
	test_draw();
	test_apply_plain_crop();
	test_rngs();
	test_sources();
	free(tmp_path);
	return check_done("test_augment");
}
