// fast.ai's scale-shorter-side + centre crop.  See image_geom.h.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "stb_image_resize.h"
#include "alloc.h"
#include "image_geom.h"

void fastai_scale_dims(int w, int h, int sz, int *tw, int *th)
{
	// fastai/transforms.py: ratio = targ/min(r,c); scale_to(x) =
	// max(math.floor(x*ratio), targ) — the same double arithmetic, so the
	// rounding agrees with Python's on every size.
	double ratio = (double)sz / (w < h ? w : h);
	double fw = floor(w * ratio), fh = floor(h * ratio);
	*tw = fw > sz ? (int)fw : sz;
	*th = fh > sz ? (int)fh : sz;
}

int fastai_crop_start(int dim, int sz)
{
	// fastai/transforms.py center_crop: math.ceil((r - min_sz)/2)
	return dim > sz ? (dim - sz + 1) / 2 : 0;
}

// Box filter for both directions: downscaling it averages areas like
// cv2.INTER_AREA (and PIL's Image.BOX); upscaling it is stb's trapezoid,
// which, like INTER_AREA's upscale path, is nearest-neighbour with a linear
// blend across pixel edges.  Values are treated as linear (no sRGB decoding),
// as cv2 does.
static int resize_region(const unsigned char *src, int w, int h, unsigned char *out,
                         int ow, int oh, float s0, float t0, float s1, float t1)
{
	return stbir_resize_region(src, w, h, w * 3, out, ow, oh, ow * 3, STBIR_TYPE_UINT8,
	                           3, STBIR_ALPHA_CHANNEL_NONE, 0,
	                           STBIR_EDGE_CLAMP, STBIR_EDGE_CLAMP,
	                           STBIR_FILTER_BOX, STBIR_FILTER_BOX,
	                           STBIR_COLORSPACE_LINEAR, NULL, s0, t0, s1, t1) ? 0 : -1;
}

int image_scale_crop(const unsigned char *src, int w, int h, int full_w, int full_h,
                     int sz, unsigned char *out)
{
	int tw, th;
	fastai_scale_dims(full_w, full_h, sz, &tw, &th);
	int cx = fastai_crop_start(tw, sz), cy = fastai_crop_start(th, sz);
	// The crop window [cx, cx+sz) of a tw-wide resize is the source range
	// [cx/tw, (cx+sz)/tw] in uv coordinates, whatever w is.
	return resize_region(src, w, h, out, sz, sz, (float)cx / tw, (float)cy / th,
	                     (float)(cx + sz) / tw, (float)(cy + sz) / th);
}

int image_scale_crop_ref(const unsigned char *src, int w, int h, int full_w, int full_h,
                         int sz, unsigned char *out)
{
	int tw, th;
	fastai_scale_dims(full_w, full_h, sz, &tw, &th);
	unsigned char *big = xmalloc_array((size_t)tw * th, 3);
	if (resize_region(src, w, h, big, tw, th, 0, 0, 1, 1) != 0) {
		free(big);
		return -1;
	}
	int cx = fastai_crop_start(tw, sz), cy = fastai_crop_start(th, sz);
	for (int y = 0; y < sz; y++)
		memcpy(out + (size_t)y * sz * 3, big + ((size_t)(y + cy) * tw + cx) * 3, (size_t)sz * 3);
	free(big);
	return 0;
}
