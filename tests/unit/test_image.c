// Image decoding and fast.ai geometry: rounding, crop window, EXIF, the
// region fast path against the resize-then-crop reference, JPEG errors.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jpeglib.h>
#include "libcommon/image/dataset.h"
#include "libcommon/image/image_decode.h"
#include "libcommon/image/image_geom.h"
#include "check.h"


static void test_dims(void)
{
	int tw, th;
	fastai_scale_dims(225, 300, 224, &tw, &th);      // floor(300*224/225) = 298
	CHECK(tw == 224 && th == 298);
	CHECK(fastai_crop_start(298, 224) == 37);        // ceil(74/2)
	CHECK(fastai_crop_start(299, 224) == 38);        // ceil(75/2)
	fastai_scale_dims(300, 225, 224, &tw, &th);
	CHECK(tw == 298 && th == 224);
	fastai_scale_dims(200, 200, 224, &tw, &th);
	CHECK(tw == 224 && th == 224);
	fastai_scale_dims(1000, 750, 224, &tw, &th);     // floor(298.666..)
	CHECK(tw == 298 && th == 224);
	fastai_scale_dims(500, 375, 246, &tw, &th);      // floor(328.0): 375*(246/375)*500/375
	CHECK(tw == 328 && th == 246);
	CHECK(fastai_crop_start(224, 224) == 0);
	// Python's rounding, not the exact quotient: 85·(224/40) is
	// 475.99999999999994 in double, so floor gives 475 (85·224/40 = 476).
	fastai_scale_dims(85, 40, 224, &tw, &th);
	CHECK(tw == 475 && th == 224);
	fastai_scale_dims(55, 55, 224, &tw, &th);        // 223.999..: max(., sz) restores 224
	CHECK(tw == 224 && th == 224);
}

// The windows: the crop one is scale_min + center_crop, the scale one the
// whole scaled image (landscape, portrait, square, enlarged, odd sizes).
static void test_windows(void)
{
	ResizeWindow c, s;
	fastai_crop_window(225, 300, 224, &c);
	CHECK(c.tw == 224 && c.th == 298 && c.cx == 0 && c.cy == 37 && c.ow == 224 && c.oh == 224);
	static const int cases[][5] = {   // w, h, side → tw, th
		{ 1000, 750, 291, 388, 291 }, { 750, 1000, 291, 291, 388 }, { 500, 500, 291, 291, 291 },
		{ 200, 200, 291, 291, 291 }, { 225, 300, 224, 224, 298 }, { 333, 250, 224, 298, 224 },
		{ 85, 40, 224, 475, 224 }, { 40, 85, 224, 224, 475 }, { 1, 1, 5, 5, 5 },
		{ 2001, 333, 50, 300, 50 },
	};
	for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
		const int *q = cases[k];
		fastai_scale_window(q[0], q[1], q[2], &s);
		if (s.tw != q[3] || s.th != q[4])
			fprintf(stderr, "scale window %dx%d -> %d: %dx%d, want %dx%d\n", q[0], q[1], q[2],
			        s.tw, s.th, q[3], q[4]);
		CHECK(s.tw == q[3] && s.th == q[4] && s.cx == 0 && s.cy == 0 && s.ow == s.tw &&
		      s.oh == s.th);
	}
	// A window outside the resized image, or empty, is refused.
	AreaPlan p = { 0 };
	ResizeWindow bad = { .tw = 100, .th = 80, .cx = 1, .cy = 0, .ow = 100, .oh = 80 };
	CHECK(area_plan_window(&p, 50, 40, &bad) == -1);
	bad.cx = 0;
	bad.oh = 0;
	CHECK(area_plan_window(&p, 50, 40, &bad) == -1);
	bad.oh = 80;
	CHECK(area_plan_window(&p, 50, 40, &bad) == 0 && p.x0 == 0 && p.x1 == 50 && p.y0 == 0 &&
	      p.y1 == 40);
	area_plan_free(&p);
}

static unsigned char *random_image(int w, int h, unsigned seed)
{
	unsigned char *p = malloc((size_t)w * h * 3);
	for (size_t i = 0; i < (size_t)w * h * 3; i++) {
		seed = seed * 1103515245u + 12345u;
		// smooth-ish content plus noise
		p[i] = (unsigned char)(((i / 3) % w + (i / 3) / w + (seed >> 24) / 4) & 255);
	}
	return p;
}

static void test_region_vs_ref(void)
{
	int cases[][3] = { { 333, 250, 224 }, { 225, 300, 224 }, { 200, 200, 224 },
	                   { 1000, 751, 224 }, { 64, 300, 31 }, { 500, 375, 246 } };
	for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
		int w = cases[k][0], h = cases[k][1], sz = cases[k][2];
		unsigned char *src = random_image(w, h, (unsigned)k + 1);
		unsigned char *a = malloc((size_t)sz * sz * 3), *b = malloc((size_t)sz * sz * 3);
		CHECK(image_scale_crop(src, w, h, w, h, sz, a) == 0);
		CHECK(image_scale_crop_ref(src, w, h, w, h, sz, b) == 0);
		int maxd = 0;
		for (size_t i = 0; i < (size_t)sz * sz * 3; i++) {
			int d = abs(a[i] - b[i]);
			if (d > maxd)
				maxd = d;
		}
		if (maxd > 1)
			fprintf(stderr, "region vs ref %dx%d→%d: max diff %d\n", w, h, sz, maxd);
		CHECK(maxd <= 1);
		free(src);
		free(a);
		free(b);
	}
	// Downscaling averages: a constant image stays constant.
	unsigned char *c = malloc(300 * 200 * 3), out[16 * 16 * 3];
	memset(c, 77, 300 * 200 * 3);
	CHECK(image_scale_crop(c, 300, 200, 300, 200, 16, out) == 0);
	int same = 1;
	for (int i = 0; i < 16 * 16 * 3; i++)
		same &= out[i] == 77;
	CHECK(same);
	free(c);
}

// The scale window (no crop) against the plain 2-D integration: shrinking,
// enlarging, odd sizes, from a full-size and a halved rendering.
static void test_scale_vs_ref(void)
{
	static const int cases[][4] = {   // rendering w, h; full w, h (side below)
		{ 333, 250, 333, 250 }, { 225, 300, 225, 300 }, { 200, 200, 200, 200 },
		{ 85, 40, 85, 40 }, { 501, 376, 1001, 751 }, { 64, 300, 64, 300 }, { 7, 3, 7, 3 },
	};
	static const int sides[] = { 224, 224, 291, 224, 246, 31, 5 };
	for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
		int w = cases[k][0], h = cases[k][1];
		ResizeWindow win;
		fastai_scale_window(cases[k][2], cases[k][3], sides[k], &win);
		unsigned char *src = random_image(w, h, (unsigned)k + 11);
		size_t nb = (size_t)win.ow * win.oh * 3;
		unsigned char *a = malloc(nb), *b = malloc(nb);
		CHECK(image_resize_window(src, w, h, &win, a) == 0);
		CHECK(image_resize_window_ref(src, w, h, &win, b) == 0);
		int maxd = 0;
		for (size_t i = 0; i < nb; i++)
			maxd = abs(a[i] - b[i]) > maxd ? abs(a[i] - b[i]) : maxd;
		if (maxd > 1)
			fprintf(stderr, "scale vs ref %dx%d->%dx%d: max diff %d\n", w, h, win.ow, win.oh, maxd);
		CHECK(maxd <= 1);
		free(src);
		free(a);
		free(b);
	}
}

static void test_orient(void)
{
	// 3 wide, 2 high; pixel value = 10*y + x in every channel.
	unsigned char px[2 * 3 * 3];
	for (int y = 0; y < 2; y++)
		for (int x = 0; x < 3; x++)
			memset(px + (y * 3 + x) * 3, 10 * y + x, 3);
	int w, h;
	unsigned char *o = image_orient(px, 3, 2, 6, &w, &h);   // 90° clockwise
	CHECK(w == 2 && h == 3);
	// Clockwise: the top row becomes the bottom-left... top-left is old bottom-left.
	CHECK(o[0] == 10 && o[3] == 0 && o[(2 * 2 + 1) * 3] == 2);
	unsigned char *back = image_orient(o, w, h, 8, &w, &h);  // 90° ccw undoes it
	CHECK(w == 3 && h == 2 && memcmp(back, px, sizeof px) == 0);
	free(o);
	free(back);
	o = image_orient(px, 3, 2, 3, &w, &h);
	CHECK(w == 3 && h == 2 && o[0] == 12 && o[15] == 0);
	free(o);
	o = image_orient(px, 3, 2, 5, &w, &h);                   // transpose
	CHECK(w == 2 && h == 3 && o[3] == 10 && o[(2 * 2) * 3] == 2);
	free(o);
	o = image_orient(px, 3, 2, 2, &w, &h);
	CHECK(o[0] == 2 && o[(3 + 2) * 3] == 10);
	free(o);
}

static void test_exif(void)
{
	unsigned char le[] = "Exif\0\0II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x06\0\0\0";
	CHECK(exif_orientation(le, sizeof le - 1) == 6);
	unsigned char be[] = "Exif\0\0MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x08\0\0";
	CHECK(exif_orientation(be, sizeof be - 1) == 8);
	CHECK(exif_orientation(le, 20) == 1);                    // truncated entry
	unsigned char bad[sizeof le];
	memcpy(bad, le, sizeof le);
	bad[10] = 0xFF;                                          // IFD offset far out
	CHECK(exif_orientation(bad, sizeof bad - 1) == 1);
	bad[10] = 8;
	bad[24] = 9;                                             // orientation 9: invalid
	CHECK(exif_orientation(bad, sizeof bad - 1) == 1);
}

static unsigned char *make_jpeg(int w, int h, int progressive, unsigned long *len)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr e;
	c.err = jpeg_std_error(&e);
	jpeg_create_compress(&c);
	unsigned char *buf = NULL;
	jpeg_mem_dest(&c, &buf, len);
	c.image_width = (unsigned)w;
	c.image_height = (unsigned)h;
	c.input_components = 3;
	c.in_color_space = JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, 95, TRUE);
	if (progressive)
		jpeg_simple_progression(&c);
	jpeg_start_compress(&c, TRUE);
	unsigned char *row = malloc((size_t)w * 3);
	while (c.next_scanline < c.image_height) {
		for (int x = 0; x < w; x++) {
			row[3 * x] = (unsigned char)(x * 255 / w);
			row[3 * x + 1] = (unsigned char)(c.next_scanline * 255 / h);
			row[3 * x + 2] = 128;
		}
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	free(row);
	return buf;
}

static void test_jpeg(void)
{
	char err[256];
	Image im;
	for (int prog = 0; prog < 2; prog++) {
		unsigned long len;
		unsigned char *j = make_jpeg(64, 48, prog, &len);
		CHECK(image_decode_mem(j, len, 0, &im, err, sizeof err) == 0);
		CHECK(im.w == 64 && im.h == 48 && im.scale_num == 8);
		// The gradient survives: left column dark red, right column bright.
		CHECK(im.px[0] < 20 && im.px[(63) * 3] > 230);
		image_free(&im);
		// Shorter side 48 covers 12 at 1/4 (48·2 >= 8·12) but not at 1/8.
		CHECK(image_decode_mem(j, len, 12, &im, err, sizeof err) == 0);
		CHECK(im.scale_num == 2 && im.w == 16 && im.h == 12 && im.full_w == 64);
		image_free(&im);
		CHECK(image_decode_mem(j, len, 6, &im, err, sizeof err) == 0 && im.scale_num == 1);
		image_free(&im);
		CHECK(image_decode_mem(j, len, 30, &im, err, sizeof err) == 0 && im.scale_num == 8);
		image_free(&im);
		// Truncated: libjpeg would pad with grey and warn; we refuse.
		CHECK(image_decode_mem(j, len * 2 / 3, 0, &im, err, sizeof err) == -1);
		CHECK(strstr(err, "Premature end") != NULL);
		// A header claiming 40000x40000 is refused before decoding (libjpeg
		// itself stops at 65500).
		for (unsigned long i = 2; i + 9 < len; i++)
			if (j[i] == 0xFF && (j[i + 1] == 0xC0 || j[i + 1] == 0xC2)) {
				j[i + 5] = j[i + 7] = 0x9C;
				j[i + 6] = j[i + 8] = 0x40;
				break;
			}
		CHECK(image_decode_mem(j, len, 0, &im, err, sizeof err) == -1);
		CHECK(strstr(err, "too large: 40000x40000") != NULL);
		free(j);
	}
	CHECK(image_decode_mem("", 0, 0, &im, err, sizeof err) == -1 && strstr(err, "empty"));
	CHECK(image_decode_mem("hello, world", 12, 0, &im, err, sizeof err) == -1 &&
	      strstr(err, "not an image"));
	unsigned char junk[] = { 0xFF, 0xD8, 0xFF, 0x00, 0x12, 0x34 };
	CHECK(image_decode_mem(junk, sizeof junk, 0, &im, err, sizeof err) == -1 &&
	      strstr(err, "bad JPEG"));
	// PNG header (IHDR) claiming 65535x65535.
	unsigned char png[] = "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\xff\xff\0\0\xff\xff\x08\x02\0\0\0"
	                      "\0\0\0\0";
	CHECK(image_decode_mem(png, sizeof png - 1, 0, &im, err, sizeof err) == -1 &&
	      strstr(err, "too large: 65535x65535"));
}

// A noisy JPEG (so a window or row off by one shows): kind 0 = YCbCr 4:2:0,
// 1 = 4:4:4, 2 = 4:2:2, 3 = greyscale, 4 = CMYK (Adobe).
static unsigned char *make_jpeg_kind(int w, int h, int progressive, int kind, unsigned long *len)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr e;
	c.err = jpeg_std_error(&e);
	jpeg_create_compress(&c);
	unsigned char *buf = NULL;
	jpeg_mem_dest(&c, &buf, len);
	int nc = kind == 3 ? 1 : kind == 4 ? 4 : 3;
	c.image_width = (unsigned)w;
	c.image_height = (unsigned)h;
	c.input_components = nc;
	c.in_color_space = kind == 3 ? JCS_GRAYSCALE : kind == 4 ? JCS_CMYK : JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, 90, TRUE);
	if (kind == 1 || kind == 2) {
		c.comp_info[0].h_samp_factor = kind == 2 ? 2 : 1;
		c.comp_info[0].v_samp_factor = 1;
	}
	if (progressive)
		jpeg_simple_progression(&c);
	jpeg_start_compress(&c, TRUE);
	unsigned char *row = malloc((size_t)w * nc);
	unsigned seed = (unsigned)(w * 7919 + h);
	while (c.next_scanline < c.image_height) {
		for (int i = 0; i < w * nc; i++) {
			seed = seed * 1103515245u + 12345u;
			row[i] = (unsigned char)((i / nc) * 200 / w + (c.next_scanline * 50 / h) + (seed >> 27));
		}
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	free(row);
	return buf;
}

// The one-pass crop decode (jpeg_crop_scanline + jpeg_skip_scanlines + ring)
// equals full decode + image_scale_crop byte for byte: odd sizes and
// offsets, both orientations, every DCT scale, upscaling, every colour kind.
static void test_crop_decode(void)
{
	int cases[][3] = { { 1000, 750, 224 }, { 750, 1000, 224 }, { 333, 250, 224 },
	                   { 225, 300, 224 }, { 200, 200, 224 }, { 641, 479, 100 },
	                   { 479, 641, 100 }, { 1203, 901, 64 }, { 901, 1203, 37 },
	                   { 517, 389, 246 }, { 64, 48, 12 }, { 2001, 333, 50 }, { 90, 700, 9 } };
	char err[256];
	ImageScratch sc = { 0 };
	int bad = 0, n = 0;
	for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
		for (int kind = 0; kind < 5; kind++)
			for (int prog = 0; prog < 2; prog++) {
				int w = cases[ci][0], h = cases[ci][1], sz = cases[ci][2];
				unsigned long len;
				unsigned char *j = make_jpeg_kind(w, h, prog, kind, &len);
				size_t nb = (size_t)sz * sz * 3;
				unsigned char *a = malloc(nb), *b = malloc(nb);
				Image im;
				int ok = image_decode_mem(j, len, sz, &im, err, sizeof err) == 0 &&
				         image_scale_crop(im.px, im.w, im.h, im.full_w, im.full_h, sz, b) == 0;
				if (ok)
					image_free(&im);
				ok = ok && image_decode_crop_mem(j, len, sz, a, &sc, err, sizeof err) == 0;
				n++;
				if (!ok || memcmp(a, b, nb) != 0) {
					bad++;
					fprintf(stderr, "crop decode %dx%d->%d kind %d prog %d differs\n",
					        w, h, sz, kind, prog);
				}
				free(a);
				free(b);
				free(j);
			}
	CHECK(bad == 0 && n == 130);
	// Damage below the window (a portrait image's window is its middle)
	// is still found: the rows after it go through the entropy decoder.
	unsigned long len;
	unsigned char *j = make_jpeg_kind(300, 900, 0, 0, &len), out[64 * 64 * 3];
	CHECK(image_decode_crop_mem(j, len, 64, out, &sc, err, sizeof err) == 0);
	CHECK(image_decode_crop_mem(j, len - len / 20, 64, out, &sc, err, sizeof err) == -1 &&
	      strstr(err, "Premature end"));
	free(j);
	CHECK(image_decode_crop_mem("", 0, 64, out, &sc, err, sizeof err) == -1 && strstr(err, "empty"));
	image_scratch_free(&sc);
}

// image_decode_scale_mem (the one-pass JPEG path over the whole image, or
// a full decode) equals full decode + image_resize_window byte for byte:
// every DCT scale, enlarging, landscape, portrait, square, odd sizes, every
// colour kind; PNG and damaged files; EXIF rotation swaps the sides.
static void test_scale_decode(void)
{
	static const int cases[][3] = {
		{ 1000, 750, 224 }, { 750, 1000, 224 }, { 333, 250, 224 }, { 200, 200, 291 },
		{ 641, 479, 100 }, { 1203, 901, 64 }, { 901, 1203, 37 }, { 85, 40, 224 },
		{ 2001, 333, 50 }, { 90, 700, 9 },
	};
	char err[256];
	ImageScratch sc = { 0 };
	ScaledImage si = { 0 };   // its buffer reused, growing and shrinking
	int bad = 0, n = 0;
	for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
		for (int kind = 0; kind < 5; kind++)
			for (int prog = 0; prog < 2; prog++) {
				int w = cases[ci][0], h = cases[ci][1], side = cases[ci][2];
				unsigned long len;
				unsigned char *j = make_jpeg_kind(w, h, prog, kind, &len);
				ResizeWindow win;
				fastai_scale_window(w, h, side, &win);
				size_t nb = (size_t)win.ow * win.oh * 3;
				unsigned char *b = malloc(nb);
				Image im;
				int ok = image_decode_mem(j, len, side, &im, err, sizeof err) == 0 &&
				         image_resize_window(im.px, im.w, im.h, &win, b) == 0;
				if (ok)
					image_free(&im);
				ok = ok && image_decode_scale_mem(j, len, side, 1, &si, &sc, err, sizeof err) == 0;
				n++;
				if (!ok || si.w != win.ow || si.h != win.oh || memcmp(si.px, b, nb) != 0) {
					bad++;
					fprintf(stderr, "scale decode %dx%d->%d kind %d prog %d differs\n",
					        w, h, side, kind, prog);
				}
				free(b);
				free(j);
			}
	CHECK(bad == 0 && n == 100);
	// enlarge 0: a photo smaller than the side keeps its size and its
	// pixels (the identity resize); a larger one shrinks as with enlarge 1
	{
		unsigned long len;
		unsigned char *j = make_jpeg_kind(200, 150, 0, 0, &len);
		Image im;
		CHECK(image_decode_mem(j, len, 200, &im, err, sizeof err) == 0);
		CHECK(image_decode_scale_mem(j, len, 291, 0, &si, &sc, err, sizeof err) == 0 &&
		      si.w == 200 && si.h == 150 && im.w == 200 && im.h == 150 &&
		      memcmp(si.px, im.px, (size_t)200 * 150 * 3) == 0);
		image_free(&im);
		CHECK(image_decode_scale_mem(j, len, 100, 0, &si, &sc, err, sizeof err) == 0 &&
		      si.w == 133 && si.h == 100);
		unsigned char *b = malloc((size_t)133 * 100 * 3);
		memcpy(b, si.px, (size_t)133 * 100 * 3);
		CHECK(image_decode_scale_mem(j, len, 100, 1, &si, &sc, err, sizeof err) == 0 &&
		      si.w == 133 && si.h == 100 && memcmp(si.px, b, (size_t)133 * 100 * 3) == 0);
		free(b);
		free(j);
	}
	// Errors: no image (w = h = 0), the buffer kept for the next.
	unsigned long len;
	unsigned char *j = make_jpeg_kind(300, 900, 0, 0, &len);
	CHECK(image_decode_scale_mem(j, len - len / 20, 64, 1, &si, &sc, err, sizeof err) == -1 &&
	      strstr(err, "Premature end") && si.w == 0 && si.h == 0 && si.px != NULL);
	CHECK(image_decode_scale_mem("", 0, 64, 1, &si, &sc, err, sizeof err) == -1 &&
	      strstr(err, "empty") && si.w == 0);
	CHECK(image_decode_scale_mem("hello, world", 12, 64, 1, &si, &sc, err, sizeof err) == -1 &&
	      strstr(err, "not an image") && si.w == 0);
	// 300x900 with an EXIF orientation of 6 (90° clockwise) shows as 900x300:
	// scaled to 64, 192x64 (the general path: full decode, orient, resize).
	unsigned char app1[] = "\xff\xe1\x00\x1e" "Exif\0\0II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x06\0\0\0";
	size_t alen = sizeof app1 - 1, elen = len + alen;
	unsigned char *e = malloc(elen);
	memcpy(e, j, 2);                       // SOI, then APP1, then the rest
	memcpy(e + 2, app1, alen);
	memcpy(e + 2 + alen, j + 2, len - 2);
	CHECK(image_decode_scale_mem(e, elen, 64, 1, &si, &sc, err, sizeof err) == 0 && si.w == 192 &&
	      si.h == 64);
	free(e);
	free(j);
	// A scaled size beyond the limits is an error of that image: 3000x1 to
	// shorter side 8192 would be 24576000x8192.
	unsigned char *thin = make_jpeg_kind(3000, 1, 0, 3, &len);
	CHECK(image_decode_scale_mem(thin, len, 8192, 1, &si, &sc, err, sizeof err) == -1 &&
	      strstr(err, "scaled image too large") && si.w == 0);
	free(thin);
	free(si.px);
	image_scratch_free(&sc);
}

// The SIMD horizontal pass equals the scalar one bit for bit: renderings
// smaller than the full image (as after a DCT downscale) give every scale,
// up and down, odd crop offsets and widths (so the SIMD loop's scalar tail
// runs too), kx odd and even, 1..>8; content with 0s and 255s (saturation,
// the u16 offset) and noise, so one wrong lane or rounding shows.
static void test_horiz_simd(void)
{
	if (!area_use_simd(1)) {
		printf("# test_horiz_simd: no SIMD horizontal pass on this machine, nothing to compare\n");
		return;
	}
	unsigned seed = 7;
	int bad = 0, n = 0, simd_plans = 0;
	for (int c = 0; c < 400; c++) {
		seed = seed * 1103515245u + 12345u;
		int full_w = 8 + (int)(seed >> 8) % 1500;
		seed = seed * 1103515245u + 12345u;
		int full_h = 8 + (int)(seed >> 8) % 1500;
		seed = seed * 1103515245u + 12345u;
		int div = 1 << ((seed >> 12) % 4);                  // DCT scale 1/1..1/8
		int w = (full_w + div - 1) / div, h = (full_h + div - 1) / div;
		static const int szs[] = { 1, 2, 3, 4, 5, 7, 9, 31, 64, 99, 224, 227, 246 };
		int sz = szs[(seed >> 20) % (sizeof szs / sizeof *szs)];
		if ((size_t)w * h > 400000 || w < 1 || h < 1)
			continue;
		unsigned char *src = random_image(w, h, seed);
		if (c % 3 == 0)                                     // extremes: 0 / 255 noise
			for (size_t i = 0; i < (size_t)w * h * 3; i++)
				src[i] = (src[i] & 1) ? 255 : 0;
		if (c % 7 == 0)
			memset(src, 255, (size_t)w * h * 3);
		size_t nb = (size_t)sz * sz * 3;
		unsigned char *a = malloc(nb), *b = malloc(nb);
		area_use_simd(1);
		AreaPlan pl = { 0 };
		CHECK(area_plan(&pl, w, h, full_w, full_h, sz) == 0);
		simd_plans += pl.simd;
		area_plan_free(&pl);
		CHECK(image_scale_crop(src, w, h, full_w, full_h, sz, a) == 0);
		area_use_simd(0);
		CHECK(image_scale_crop(src, w, h, full_w, full_h, sz, b) == 0);
		n++;
		if (memcmp(a, b, nb) != 0) {
			bad++;
			fprintf(stderr, "horiz simd %dx%d of %dx%d -> %d differs\n", w, h, full_w, full_h, sz);
		}
		free(a);
		free(b);
		free(src);
	}
	area_use_simd(1);
	CHECK(bad == 0 && n > 300 && simd_plans == n);
	// Scale windows (no crop): output widths odd and even, enlarging and
	// shrinking, through the same two passes.
	bad = 0;
	for (int c = 0; c < 60; c++) {
		seed = seed * 1103515245u + 12345u;
		int w = 3 + (int)(seed >> 8) % 700;
		seed = seed * 1103515245u + 12345u;
		int h = 3 + (int)(seed >> 8) % 700;
		int side = 5 + (int)(seed >> 20) % 300;
		ResizeWindow win;
		fastai_scale_window(w, h, side, &win);
		unsigned char *src = random_image(w, h, seed);
		size_t nb = (size_t)win.ow * win.oh * 3;
		unsigned char *a = malloc(nb), *b = malloc(nb);
		area_use_simd(1);
		CHECK(image_resize_window(src, w, h, &win, a) == 0);
		area_use_simd(0);
		CHECK(image_resize_window(src, w, h, &win, b) == 0);
		if (memcmp(a, b, nb) != 0) {
			bad++;
			fprintf(stderr, "horiz simd scale %dx%d -> %dx%d differs\n", w, h, win.ow, win.oh);
		}
		free(a);
		free(b);
		free(src);
	}
	area_use_simd(1);
	CHECK(bad == 0);
}

// ---- dataset_scan: folders and classes --------------------------------------

static char *ds_root;

static char *under(const char *rel)
{
	size_t n = strlen(ds_root) + strlen(rel) + 2;
	char *p = malloc(n);
	snprintf(p, n, "%s/%s", ds_root, rel);
	return p;
}

// Makes the folder (a trailing '/') or empty file rel under ds_root.
static void make(const char *rel)
{
	char *p = under(rel);
	size_t n = strlen(p);
	if (p[n - 1] == '/') {
		p[n - 1] = 0;
		CHECK(mkdir(p, 0755) == 0);
	} else {
		check_write_file(p, "", 0);
	}
	free(p);
}

typedef struct { const char *dir, *classes; } ScanArgs;

static void scan_die(void *arg)
{
	const ScanArgs *a = arg;
	ClassList cl = { 0 };
	if (a->classes)
		classes_split(&cl, a->classes, "--classes");
	Dataset ds;
	char *d = under(a->dir);
	dataset_scan(&ds, d, &cl);
}

static int scan_dies(const char *dir, const char *classes, const char *msg)
{
	ScanArgs a = { dir, classes };
	return check_dies(scan_die, &a, 1, msg);
}

static void test_dataset(void)
{
	ds_root = check_tmp("test_image.dataset");
	CHECK(mkdir(ds_root, 0755) == 0);
	static const char *TREE[] = {
		"lab/", "lab/dogs/", "lab/dogs/b.jpg", "lab/dogs/a.jpg", "lab/cats/", "lab/cats/z.png",
		"lab/cats/.hidden", "lab/.git/", "lab/.git/x", "lab/.DS_Store",
		"flat/", "flat/2.jpg", "flat/10.jpg", "flat/1.jpg", "flat/.x",
		"mixed/", "mixed/f.jpg", "mixed/d/", "empty/", "emptycls/", "emptycls/cats/",
		"comma/", "comma/a,b/", "comma/a,b/x.jpg",
	};
	for (size_t i = 0; i < sizeof TREE / sizeof TREE[0]; i++)
		make(TREE[i]);

	ClassList cl = { 0 };
	Dataset ds;
	char *lab = under("lab/");   // a trailing slash is not doubled
	dataset_scan(&ds, lab, &cl);
	char *j = classes_join(&cl);
	CHECK(strcmp(j, "cats,dogs") == 0);
	free(j);
	CHECK(ds.labelled && ds.n == 3);
	CHECK(ds.n == 3 && strcmp(ds.rel[0], "cats/z.png") == 0 && ds.label[0] == 0 &&
	      strcmp(ds.rel[1], "dogs/a.jpg") == 0 && ds.label[1] == 1 &&
	      strcmp(ds.rel[2], "dogs/b.jpg") == 0 && ds.label[2] == 1);
	char *p = dataset_path(&ds, 2), *want = under("lab/dogs/b.jpg");
	CHECK(strcmp(p, want) == 0);
	free(p);
	free(want);
	dataset_free(&ds);
	classes_free(&cl);
	// given classes fix the label order; a class without a folder is no error
	classes_split(&cl, "dogs,birds,cats", "--classes");
	dataset_scan(&ds, lab, &cl);
	CHECK(cl.n == 3 && ds.n == 3 && strcmp(ds.rel[0], "dogs/a.jpg") == 0 && ds.label[0] == 0 &&
	      strcmp(ds.rel[2], "cats/z.png") == 0 && ds.label[2] == 2);
	dataset_free(&ds);
	classes_free(&cl);
	free(lab);
	// flat: unlabelled, bytewise order
	char *flat = under("flat");
	dataset_scan(&ds, flat, &cl);
	CHECK(!ds.labelled && cl.n == 0 && ds.n == 3 && strcmp(ds.rel[0], "1.jpg") == 0 &&
	      strcmp(ds.rel[1], "10.jpg") == 0 && strcmp(ds.rel[2], "2.jpg") == 0 &&
	      ds.label[0] == -1 && ds.label[2] == -1);
	dataset_free(&ds);
	free(flat);
	CHECK(scan_dies("lab", "cats", "lab/dogs: class folder not in the class list"));
	CHECK(scan_dies("mixed", NULL, "mixed: holds both files (f.jpg) and class folders (d)"));
	CHECK(scan_dies("empty", NULL, "empty: no images"));
	CHECK(scan_dies("emptycls", NULL, "emptycls/cats: no images"));
	CHECK(scan_dies("comma", NULL, "comma: class name 'a,b' is empty or holds ','"));
	CHECK(scan_dies("nonexistent", NULL, "nonexistent: No such file"));

	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", ds_root);
	CHECK(system(cmd) == 0);
	free(ds_root);
}

int main(void)
{
	test_dims();
	test_windows();
	test_region_vs_ref();
	test_scale_vs_ref();
	test_horiz_simd();
	test_orient();
	test_exif();
	test_jpeg();
	test_crop_decode();
	test_scale_decode();
	test_dataset();
	return check_done("test_image");
}
