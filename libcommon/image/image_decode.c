// Image decoding.  See image_decode.h.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jpeglib.h>
#include <jerror.h>
#include "stb_image.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/le.h"
#include "image_decode.h"
#include "png_check.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int dims_absurd(long long w, long long h)
{
	return w < 1 || h < 1 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE ||
	       (unsigned long long)(w * h) > IMAGE_MAX_PIXELS;
}

// need: what a decode of a w x h image would hold (IMAGE_MAX_DECODE_BYTES).
static int over_budget(unsigned long long need, long long w, long long h, char *err,
                       size_t errlen)
{
	if (need <= IMAGE_MAX_DECODE_BYTES)
		return 0;
	return fail(err, errlen, "image too large to decode: %lldx%lld would take %llu MiB "
	            "(limit %zu MiB)", w, h, (need + (1u << 20) - 1) >> 20,
	            IMAGE_MAX_DECODE_BYTES >> 20);
}

// --- EXIF orientation ---------------------------------------------------

// TIFF fields in the byte order its header names ("II" or "MM").
static unsigned tiff16(const unsigned char *p, int le)
{
	return le ? le_get16(p) : be_get16(p);
}
static uint32_t tiff32(const unsigned char *p, int le)
{
	return le ? le_get32(p) : be_get32(p);
}

int exif_orientation(const unsigned char *p, size_t n)
{
	if (n < 14 || memcmp(p, "Exif\0\0", 6) != 0)
		return 1;
	p += 6;
	n -= 6;   // p: the TIFF header; offsets below are relative to it
	int le;
	if (p[0] == 'I' && p[1] == 'I')
		le = 1;
	else if (p[0] == 'M' && p[1] == 'M')
		le = 0;
	else
		return 1;
	if (tiff16(p + 2, le) != 42)
		return 1;
	uint32_t ifd = tiff32(p + 4, le);
	if (ifd > n || n - ifd < 2)
		return 1;
	unsigned count = tiff16(p + ifd, le);
	for (unsigned i = 0; i < count; i++) {
		size_t e = (size_t)ifd + 2 + (size_t)i * 12;
		if (e + 12 > n)
			return 1;
		if (tiff16(p + e, le) == 0x0112) {       // Orientation, SHORT
			if (tiff16(p + e + 2, le) != 3)
				return 1;
			unsigned v = tiff16(p + e + 8, le);
			return v >= 1 && v <= 8 ? (int)v : 1;
		}
	}
	return 1;
}

unsigned char *image_orient(const unsigned char *px, int w, int h, int o, int *ow, int *oh)
{
	int swap = o >= 5;
	int W = swap ? h : w, H = swap ? w : h;
	unsigned char *out = xmalloc_array((size_t)W * H, 3);
	for (int oy = 0; oy < H; oy++)
		for (int ox = 0; ox < W; ox++) {
			int sx, sy;
			switch (o) {    // the EXIF 2.3 orientation table, output ← source
			case 2: sx = w - 1 - ox; sy = oy; break;
			case 3: sx = w - 1 - ox; sy = h - 1 - oy; break;
			case 4: sx = ox; sy = h - 1 - oy; break;
			case 5: sx = oy; sy = ox; break;                    // transpose
			case 6: sx = oy; sy = h - 1 - ox; break;            // rotate 90° cw
			case 7: sx = w - 1 - oy; sy = h - 1 - ox; break;    // transverse
			case 8: sx = w - 1 - oy; sy = ox; break;            // rotate 90° ccw
			default: sx = ox; sy = oy; break;
			}
			memcpy(out + ((size_t)oy * W + ox) * 3, px + ((size_t)sy * w + sx) * 3, 3);
		}
	*ow = W;
	*oh = H;
	return out;
}

// --- JPEG through libjpeg-turbo --------------------------------------------

typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX];
	ImageScratch *sc;   // NULL: warnings are errors
} JpegErr;

static void jpeg_error_exit_cb(j_common_ptr c)
{
	JpegErr *e = (JpegErr *)c->err;
	c->err->format_message(c, e->msg);
	longjmp(e->jb, 1);
}

// Warnings (msg_level -1) mean damaged data that libjpeg papers over
// (image_decode.h): errors, unless the caller accepts them.
static void jpeg_emit_message_cb(j_common_ptr c, int level)
{
	if (level >= 0)
		return;     // trace messages
	JpegErr *e = (JpegErr *)c->err;
	if (!e->sc || !e->sc->accept_warnings)
		jpeg_error_exit_cb(c);
	if (e->sc->warnings++ == 0) {
		char m[JMSG_LENGTH_MAX];
		c->err->format_message(c, m);
		snprintf(e->sc->warning, sizeof e->sc->warning, "%s", m);
	}
	c->err->num_warnings++;
}

static void jpeg_silent_output_cb(j_common_ptr c)
{
	(void)c;
}

static int is_jpeg(const unsigned char *p, size_t n)
{
	return n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF;
}

static int jpeg_orientation(const struct jpeg_decompress_struct *ci)
{
	for (jpeg_saved_marker_ptr m = ci->marker_list; m; m = m->next)
		if (m->marker == JPEG_APP0 + 1) {
			int o = exif_orientation(m->data, m->data_length);
			if (o != 1)
				return o;
		}
	return 1;
}

static int pick_scale(const struct jpeg_decompress_struct *ci, int min_side)
{
	unsigned shorter = ci->image_width < ci->image_height ? ci->image_width : ci->image_height;
	if (min_side > 0)
		for (int n = 1; n < 8; n *= 2)
			if ((unsigned long long)shorter * n >= 8ull * (unsigned)min_side)
				return n;
	return 8;
}

// Adobe writers store CMYK inverted (0 = full ink); then R = C'·K'/255 on
// the stored values, else (255-C)(255-K)/255.
static void cmyk_to_rgb(const unsigned char *row, unsigned char *o, unsigned w, int inv)
{
	for (unsigned x = 0; x < w; x++) {
		unsigned c = row[4 * x], m = row[4 * x + 1], yy = row[4 * x + 2], k = row[4 * x + 3];
		if (!inv) {
			c = 255 - c; m = 255 - m; yy = 255 - yy; k = 255 - k;
		}
		o[3 * x] = (unsigned char)((c * k + 127) / 255);
		o[3 * x + 1] = (unsigned char)((m * k + 127) / 255);
		o[3 * x + 2] = (unsigned char)((yy * k + 127) / 255);
	}
}

static void jpeg_setup_err(struct jpeg_decompress_struct *ci, JpegErr *je, ImageScratch *sc)
{
	ci->err = jpeg_std_error(&je->pub);
	je->pub.error_exit = jpeg_error_exit_cb;
	je->pub.emit_message = jpeg_emit_message_cb;
	je->pub.output_message = jpeg_silent_output_cb;
	je->sc = sc;
	if (sc) {
		sc->warnings = 0;
		sc->warning[0] = 0;
	}
}

// The file handed to libjpeg in pieces smaller than its fast Huffman
// decoder asks for (512 bytes a block of an MCU): given the whole file at
// once it takes that path everywhere, and the path turns a bad Huffman code
// into a zero without a warning; the other path warns.
#define JPEG_SRC_PIECE 256
typedef struct {
	struct jpeg_source_mgr pub;
	const unsigned char *p, *end;
} PieceSrc;

static void piece_init(j_decompress_ptr ci)
{
	(void)ci;
}

static boolean piece_fill(j_decompress_ptr ci)
{
	static const JOCTET eoi[2] = { 0xFF, JPEG_EOI };
	PieceSrc *s = (PieceSrc *)ci->src;
	size_t n = (size_t)(s->end - s->p);
	if (n == 0) {
		// As libjpeg's own sources do at the end of the data: a warning
		// (an error here), then an EOI so that it can stop.
		WARNMS(ci, JWRN_JPEG_EOF);
		s->pub.next_input_byte = eoi;
		s->pub.bytes_in_buffer = 2;
		return TRUE;
	}
	if (n > JPEG_SRC_PIECE)
		n = JPEG_SRC_PIECE;
	s->pub.next_input_byte = s->p;
	s->pub.bytes_in_buffer = n;
	s->p += n;
	return TRUE;
}

static void piece_skip(j_decompress_ptr ci, long n)
{
	PieceSrc *s = (PieceSrc *)ci->src;
	while (n > (long)s->pub.bytes_in_buffer) {
		n -= (long)s->pub.bytes_in_buffer;
		piece_fill(ci);
	}
	s->pub.next_input_byte += n;
	s->pub.bytes_in_buffer -= (size_t)n;
}

static void piece_term(j_decompress_ptr ci)
{
	(void)ci;
}

static void piece_src(struct jpeg_decompress_struct *ci, PieceSrc *s, const void *buf,
                      size_t len)
{
	memset(s, 0, sizeof *s);
	s->pub.init_source = piece_init;
	s->pub.fill_input_buffer = piece_fill;
	s->pub.skip_input_data = piece_skip;
	s->pub.resync_to_restart = jpeg_resync_to_restart;
	s->pub.term_source = piece_term;
	s->p = buf;
	s->end = s->p + len;
	ci->src = &s->pub;
}

// What libjpeg holds itself, from above: the saved APP1 markers (at most
// the file), row buffers (a few dozen rows of each component: 128 bytes a
// column each leaves room) and, for an image of several scans (progressive),
// the DCT coefficients of the whole image, at full size whatever the
// scaling (jdcoefct.c: rows and columns of blocks rounded up to the
// sampling factors, 64 shorts a block).
static unsigned long long jpeg_own_bytes(j_decompress_ptr ci, size_t len)
{
	unsigned long long n = len + 128ull * ci->image_width * (unsigned)ci->num_components;
	if (jpeg_has_multiple_scans(ci))
		for (int c = 0; c < ci->num_components; c++) {
			const jpeg_component_info *k = &ci->comp_info[c];
			unsigned long long bw = k->width_in_blocks, bh = k->height_in_blocks;
			unsigned hs = (unsigned)k->h_samp_factor, vs = (unsigned)k->v_samp_factor;
			bw = (bw + hs - 1) / hs * hs;
			bh = (bh + vs - 1) / vs * vs;
			n += bw * bh * sizeof(JBLOCK);
		}
	return n;
}

// Creates the decompressor on buf, reads the header (keeping APP1 for
// EXIF) and refuses absurd dimensions before any pixel memory exists.
// Called after the caller's setjmp: libjpeg errors long-jump there.
static int jpeg_start(struct jpeg_decompress_struct *ci, PieceSrc *src, const void *buf,
                      size_t len, char *err, size_t errlen)
{
	jpeg_create_decompress(ci);
	// No backing store: beyond this libjpeg's big buffers fail cleanly (the
	// budget check below refuses such an image first).
	ci->mem->max_memory_to_use = (long)IMAGE_MAX_DECODE_BYTES;
	piece_src(ci, src, buf, len);
	jpeg_save_markers(ci, JPEG_APP0 + 1, 0xFFFF);
	jpeg_read_header(ci, TRUE);
	if (dims_absurd(ci->image_width, ci->image_height)) {
		unsigned w = ci->image_width, h = ci->image_height;
		jpeg_destroy_decompress(ci);
		return fail(err, errlen, "image too large: %ux%u (limits: %d per side, %llu pixels)",
		            w, h, IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS);
	}
	return 0;
}

// Sets the output colour space and DCT scale for min_side, and checks the
// decode's budget: libjpeg's own memory plus `per_px` bytes a pixel and
// `per_col` a column of the scaled output that the caller will allocate.
static int jpeg_plan(struct jpeg_decompress_struct *ci, int min_side, size_t len,
                     unsigned per_px, unsigned per_col, char *err, size_t errlen)
{
	int cmyk = ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK;
	ci->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;   // greyscale → RGB by libjpeg-turbo
	ci->scale_num = (unsigned)pick_scale(ci, min_side);
	ci->scale_denom = 8;
	jpeg_calc_output_dimensions(ci);
	unsigned long long need = jpeg_own_bytes(ci, len) +
	                          (unsigned long long)ci->output_width * ci->output_height * per_px +
	                          (unsigned long long)ci->output_width * per_col;
	if (over_budget(need, ci->image_width, ci->image_height, err, errlen) != 0) {
		jpeg_destroy_decompress(ci);
		return -1;
	}
	return 0;
}

// sc: NULL, or where warnings are accepted and counted.
static int decode_jpeg(const unsigned char *buf, size_t len, int min_side, Image *img,
                       ImageScratch *sc, char *err, size_t errlen)
{
	struct jpeg_decompress_struct ci;
	JpegErr je;
	PieceSrc src;
	unsigned char *volatile px = NULL;
	unsigned char *volatile row = NULL;
	memset(&ci, 0, sizeof ci);
	jpeg_setup_err(&ci, &je, sc);
	if (setjmp(je.jb)) {
		jpeg_destroy_decompress(&ci);
		free(px);
		free(row);
		return fail(err, errlen, "bad JPEG: %s", je.msg);
	}
	if (jpeg_start(&ci, &src, buf, len, err, errlen) != 0)
		return -1;
	int orient = jpeg_orientation(&ci);
	int cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
	// The smallest of the scales 1/8, 1/4, 1/2 whose shorter side still
	// covers min_side, else full size (never DCT upscaling).  Powers of two
	// only (as PIL's draft()): libjpeg-turbo's other scaled IDCTs (3/8, 5/8,
	// 3/4, 7/8) measured 2-4x further from an area average of the full-size
	// decode (mean abs diff 1.4-4.6 vs 0.5 for 1/2 on upscaled photos).
	// The pixels, their rotated copy, a CMYK row.
	if (jpeg_plan(&ci, min_side, len, orient != 1 ? 6 : 3, cmyk ? 4 : 0, err, errlen) != 0)
		return -1;
	int num = (int)ci.scale_num;
	jpeg_start_decompress(&ci);
	unsigned w = ci.output_width, h = ci.output_height;
	px = xmalloc_array((size_t)w * h, 3);
	if (cmyk)
		row = xmalloc_array(w, 4);
	while (ci.output_scanline < h) {
		unsigned y = ci.output_scanline;
		JSAMPROW rp = cmyk ? row : px + (size_t)y * w * 3;
		if (jpeg_read_scanlines(&ci, &rp, 1) != 1)
			ERREXIT(&ci, JERR_INPUT_EOF);   // cannot happen with a memory source
		if (cmyk)
			cmyk_to_rgb(row, px + (size_t)y * w * 3, w, ci.saw_Adobe_marker);
	}
	jpeg_finish_decompress(&ci);
	jpeg_destroy_decompress(&ci);
	free(row);
	img->px = px;
	img->w = (int)w;
	img->h = (int)h;
	img->full_w = (int)ci.image_width;
	img->full_h = (int)ci.image_height;
	img->scale_num = num;
	img->orientation = 1;
	if (orient != 1) {
		int ow, oh;
		unsigned char *o = image_orient(img->px, img->w, img->h, orient, &ow, &oh);
		free(img->px);
		img->px = o;
		img->w = ow;
		img->h = oh;
		if (orient >= 5) {
			int t = img->full_w;
			img->full_w = img->full_h;
			img->full_h = t;
		}
		img->orientation = orient;
	}
	return 0;
}

// Rows and columns decoded beyond the crop window's, so that the chroma
// upsampling at the edges of a cropped/skipped decode (which sees no
// neighbours there) never reaches a pixel the window reads.
#define CROP_MARGIN 8

static void *grow_buf(unsigned char **p, size_t *cap, size_t n)
{
	if (n > *cap) {
		free(*p);
		*p = xmalloc(n);
		*cap = n;
	}
	return *p;
}

// What the resize makes: the sz×sz centre crop into the caller's buffer
// out, or (dst set) the whole image scaled to shorter side sz, into dst's
// buffer, grown once the size is known.
typedef struct {
	int sz;
	int enlarge;           // scaled: a shorter side under sz is scaled up
	unsigned char *out;
	ScaledImage *dst;
	ResizeWindow win;
} Target;

// The window for a full_w×full_h image, and the scaled image's buffer.
static int target_begin(Target *t, int full_w, int full_h, char *err, size_t errlen)
{
	if (!t->dst) {
		fastai_crop_window(full_w, full_h, t->sz, &t->win);
		return 0;
	}
	int side = t->sz, shorter = full_w < full_h ? full_w : full_h;
	if (!t->enlarge && shorter < side)
		side = shorter;   // kept at its own size: the identity resize
	fastai_scale_window(full_w, full_h, side, &t->win);
	int ow = t->win.ow, oh = t->win.oh;
	_Static_assert(IMAGE_MAX_SIDE <= AREA_MAX_SIDE, "a scaled image the resize cannot plan");
	if (dims_absurd(ow, oh))
		return fail(err, errlen, "scaled image too large: %dx%d (limits: %d per side, %llu pixels)",
		            ow, oh, IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS);
	size_t need = (size_t)ow * (size_t)oh * 3;
	if (t->dst->cap < need) {
		// Reused from image to image: fresh pages for every image
		// measured 10-45% more CPU time (page faults).
		free(t->dst->px);
		t->dst->px = xmalloc(need);
		t->dst->cap = need;
	}
	t->out = t->dst->px;
	return 0;
}

// The one-pass path: 1 = not taken (EXIF rotation: the caller decodes in
// full), 0 = done, -1 = error.
static int decode_jpeg_window(const unsigned char *buf, size_t len, Target *t,
                              ImageScratch *sc, char *err, size_t errlen)
{
	struct jpeg_decompress_struct ci;
	JpegErr je;
	PieceSrc src;
	memset(&ci, 0, sizeof ci);
	jpeg_setup_err(&ci, &je, sc);
	if (setjmp(je.jb)) {
		jpeg_destroy_decompress(&ci);
		return fail(err, errlen, "bad JPEG: %s", je.msg);
	}
	if (jpeg_start(&ci, &src, buf, len, err, errlen) != 0)
		return -1;
	if (jpeg_orientation(&ci) != 1) {
		jpeg_destroy_decompress(&ci);
		return 1;
	}
	int cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
	// The ring (at most 64 + BATCH rows below) and a CMYK row.
	if (jpeg_plan(&ci, t->sz, len, 0, 3 * 80 + (cmyk ? 4 : 0), err, errlen) != 0)
		return -1;
	if (target_begin(t, (int)ci.image_width, (int)ci.image_height, err, errlen) != 0) {
		jpeg_destroy_decompress(&ci);
		return -1;
	}
	jpeg_start_decompress(&ci);
	unsigned w = ci.output_width, h = ci.output_height;
	AreaPlan *p = &sc->plan;
	// A shrink of over ~60:1 even after DCT scaling (a big image to a tiny
	// sz) takes the general path: the ring holds at most 64 rows.
	if (area_plan_window(p, (int)w, (int)h, &t->win) != 0 || p->maxcnt_y > 64) {
		jpeg_destroy_decompress(&ci);
		return 1;
	}
	// Columns: libjpeg-turbo widens [xoff, xoff+xw) to iMCU boundaries.
	JDIMENSION xoff = p->x0 > CROP_MARGIN ? (JDIMENSION)(p->x0 - CROP_MARGIN) : 0;
	JDIMENSION xend = (unsigned)p->x1 + CROP_MARGIN < w ? (JDIMENSION)p->x1 + CROP_MARGIN : w;
	JDIMENSION xw = xend - xoff;
	if (xw < w)
		jpeg_crop_scanline(&ci, &xoff, &xw);
	else
		xoff = 0;
	xw = ci.output_width;
	// The ring: the rows the pending output rows read plus one batch of
	// BATCH rows, read with one jpeg_read_scanlines call (decoding and
	// resizing in batches measured faster than alternating row by row).
	enum { BATCH = 16 };
	size_t stride = (size_t)xw * 3;
	unsigned R = (unsigned)p->maxcnt_y + BATCH;
	unsigned char *ring = grow_buf(&sc->ring, &sc->ring_cap, stride * R);
	unsigned char *row = cmyk ? grow_buf(&sc->row, &sc->row_cap, (size_t)xw * 4) : NULL;
	const unsigned char *rows[64];
	unsigned ys = p->y0 > CROP_MARGIN ? (unsigned)p->y0 - CROP_MARGIN : 0;
	if (ys > 0 && jpeg_skip_scanlines(&ci, ys) != ys)
		ERREXIT(&ci, JERR_INPUT_EOF);
	size_t col = (size_t)(p->x0 - (int)xoff) * 3;
	int y = 0;
	for (unsigned j = ys; j < (unsigned)p->y1;) {
		unsigned nb = (unsigned)p->y1 - j < BATCH ? (unsigned)p->y1 - j : BATCH;
		for (unsigned got = 0; got < nb;) {
			JSAMPROW rp[BATCH];
			unsigned m = cmyk ? 1 : nb - got;
			for (unsigned k = 0; k < m; k++)
				rp[k] = ring + ((j + got + k) % R) * stride;
			if (cmyk)
				rp[0] = row;
			unsigned r = jpeg_read_scanlines(&ci, rp, m);
			if (r == 0)
				ERREXIT(&ci, JERR_INPUT_EOF);   // cannot happen with a memory source
			if (cmyk)
				cmyk_to_rgb(row, ring + ((j + got) % R) * stride, xw, ci.saw_Adobe_marker);
			got += r;
		}
		j += nb;
		while (y < p->oh && (unsigned)(p->yfirst[y] + p->ycnt[y]) <= j) {
			for (int k = 0; k < p->ycnt[y]; k++)
				rows[k] = ring + ((unsigned)(p->yfirst[y] + k) % R) * stride + col;
			area_plan_row(p, y, rows, t->out + (size_t)y * p->ow * 3);
			y++;
		}
	}
	// The rest still goes through the entropy decoder (skipping to the very
	// end would not), so damage there is reported as before.
	unsigned left = h - ci.output_scanline;
	if (left > 1 && jpeg_skip_scanlines(&ci, left - 1) != left - 1)
		ERREXIT(&ci, JERR_INPUT_EOF);
	if (left > 0) {
		JSAMPROW rp = cmyk ? row : ring;
		if (jpeg_read_scanlines(&ci, &rp, 1) != 1)
			ERREXIT(&ci, JERR_INPUT_EOF);
	}
	jpeg_finish_decompress(&ci);
	jpeg_destroy_decompress(&ci);
	return 0;
}

// --- everything else through stb_image ------------------------------------

static int decode_stb(const unsigned char *buf, size_t len, Image *img, char *err, size_t errlen)
{
	if (len > INT32_MAX)
		return fail(err, errlen, "file too large");
	int w, h, c;
	// stb_image refuses a huge PNG itself but then reports "unknown image
	// type"; read the IHDR size first so the message says what is wrong.
	if (len >= 24 && memcmp(buf, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(buf + 12, "IHDR", 4) == 0) {
		uint32_t pw = be_get32(buf + 16), ph = be_get32(buf + 20);
		if (dims_absurd(pw, ph))
			return fail(err, errlen, "image too large: %ux%u (limits: %d per side, %llu pixels)",
			            pw, ph, IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS);
	}
	if (!stbi_info_from_memory(buf, (int)len, &w, &h, &c))
		return fail(err, errlen, "not an image (unknown format or bad header: %s)",
		            stbi_failure_reason() ? stbi_failure_reason() : "?");
	if (dims_absurd(w, h))
		return fail(err, errlen, "image too large: %dx%d (limits: %d per side, %llu pixels)",
		            w, h, IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS);
	// stb_image holds the image at its own channels and depth (c x b bytes
	// a pixel; HDR as floats) up to three times over at once (a PNG: the
	// inflated rows, the unfiltered image, then its 8-bit or 3-channel
	// conversion; the rows no more than png_check_inflate lets through),
	// then the RGB result and its copy below.
	unsigned b = stbi_is_hdr_from_memory(buf, (int)len) ? 4
	           : stbi_is_16_bit_from_memory(buf, (int)len) ? 2 : 1;
	// A PNG's IDAT data, gathered into a buffer grown by doubling, may take
	// three times its size.
	unsigned long long need = 3ull * len +
	                          (unsigned long long)w * (unsigned)h * (3u * (unsigned)c * b + 6);
	if (over_budget(need, w, h, err, errlen) != 0 || png_check_inflate(buf, len, err, errlen) != 0)
		return -1;
	int w2, h2;
	unsigned char *p = stbi_load_from_memory(buf, (int)len, &w2, &h2, &c, 3);
	if (!p)
		return fail(err, errlen, "bad image: %s",
		            stbi_failure_reason() ? stbi_failure_reason() : "?");
	if (w2 != w || h2 != h) {     // a header that changed its mind
		stbi_image_free(p);
		return fail(err, errlen, "bad image: inconsistent dimensions");
	}
	// Own the pixels with malloc so image_free has one rule.
	img->px = xmalloc_array((size_t)w * h, 3);
	memcpy(img->px, p, (size_t)w * h * 3);
	stbi_image_free(p);
	img->w = img->full_w = w;
	img->h = img->full_h = h;
	img->orientation = 1;
	img->scale_num = 8;
	return 0;
}

// sc: NULL, or whose choice on libjpeg's warnings applies.
static int decode_mem(const void *buf, size_t len, int min_side, Image *img, ImageScratch *sc,
                      char *err, size_t errlen)
{
	memset(img, 0, sizeof *img);
	if (len == 0)
		return fail(err, errlen, "empty file");
	if (is_jpeg(buf, len))
		return decode_jpeg(buf, len, min_side, img, sc, err, errlen);
	return decode_stb(buf, len, img, err, errlen);
}

int image_decode_mem(const void *buf, size_t len, int min_side, Image *img,
                     char *err, size_t errlen)
{
	return decode_mem(buf, len, min_side, img, NULL, err, errlen);
}

// Decode + resize to t: the one-pass JPEG path when it applies, else a
// full decode (DCT-downscaled as far as t->sz allows) and the same resize.
static int decode_to(const void *buf, size_t len, Target *t, ImageScratch *sc, char *err,
                     size_t errlen)
{
	sc->warnings = 0;
	sc->warning[0] = 0;
	if (t->sz < 1 || t->sz > 8192)
		return fail(err, errlen, "bad size %d", t->sz);
	if (len == 0)
		return fail(err, errlen, "empty file");
	if (is_jpeg(buf, len)) {
		int r = decode_jpeg_window(buf, len, t, sc, err, errlen);
		if (r <= 0)
			return r;
	}
	Image im;
	if (decode_mem(buf, len, t->sz, &im, sc, err, errlen) != 0)
		return -1;
	int r = target_begin(t, im.full_w, im.full_h, err, errlen);
	if (r == 0 && image_resize_window(im.px, im.w, im.h, &t->win, t->out) != 0)
		r = fail(err, errlen, "resize failed");
	image_free(&im);
	return r;
}

int image_decode_crop_mem(const void *buf, size_t len, int sz, unsigned char *out,
                          ImageScratch *sc, char *err, size_t errlen)
{
	Target t = { .sz = sz, .out = out };
	return decode_to(buf, len, &t, sc, err, errlen);
}

int image_decode_scale_mem(const void *buf, size_t len, int side, int enlarge,
                           ScaledImage *out, ImageScratch *sc, char *err, size_t errlen)
{
	Target t = { .sz = side, .enlarge = enlarge, .dst = out };
	out->w = out->h = 0;
	if (decode_to(buf, len, &t, sc, err, errlen) != 0)
		return -1;
	out->w = t.win.ow;
	out->h = t.win.oh;
	return 0;
}

// Reads path into sc->file: 0, or -1 with the reason in err.
static int read_image_file(const char *path, ImageScratch *sc, size_t *n, char *err,
                           size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return fail(err, errlen, "%s", strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) != 0) {
		int e = errno;
		fclose(f);
		return fail(err, errlen, "%s", strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		fclose(f);
		return fail(err, errlen, "not a regular file");
	}
	if ((unsigned long long)st.st_size > IMAGE_MAX_FILE_BYTES) {
		fclose(f);
		return fail(err, errlen, "file too large (%lld bytes, limit %zu)",
		            (long long)st.st_size, IMAGE_MAX_FILE_BYTES);
	}
	*n = (size_t)st.st_size;
	unsigned char *buf = grow_buf(&sc->file, &sc->file_cap, *n ? *n : 1);
	size_t got = *n ? fread(buf, 1, *n, f) : 0;
	int rerr = ferror(f);
	fclose(f);
	if (rerr || got != *n)
		return fail(err, errlen, "read error");
	return 0;
}

int image_load_crop(const char *path, int sz, unsigned char *out, ImageScratch *sc,
                    char *err, size_t errlen)
{
	size_t n = 0;
	sc->warnings = 0;
	if (read_image_file(path, sc, &n, err, errlen) != 0)
		return -1;
	return image_decode_crop_mem(sc->file, n, sz, out, sc, err, errlen);
}

int image_load_scale(const char *path, int side, int enlarge, ScaledImage *out,
                     ImageScratch *sc, char *err, size_t errlen)
{
	size_t n = 0;
	out->w = out->h = 0;
	sc->warnings = 0;
	if (read_image_file(path, sc, &n, err, errlen) != 0)
		return -1;
	return image_decode_scale_mem(sc->file, n, side, enlarge, out, sc, err, errlen);
}

int image_load(const char *path, int min_side, Image *img, char *err, size_t errlen)
{
	memset(img, 0, sizeof *img);
	ImageScratch sc = { 0 };
	size_t n = 0;
	int r = read_image_file(path, &sc, &n, err, errlen);
	if (r == 0)
		r = image_decode_mem(sc.file, n, min_side, img, err, errlen);
	image_scratch_free(&sc);
	return r;
}

void image_scratch_free(ImageScratch *sc)
{
	free(sc->file);
	free(sc->ring);
	free(sc->row);
	area_plan_free(&sc->plan);
	memset(sc, 0, sizeof *sc);
}

void image_free(Image *img)
{
	free(img->px);
	img->px = NULL;
}
