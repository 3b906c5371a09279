// fast.ai's validation geometry: scale the shorter side to sz with an area
// filter, then centre crop sz×sz.  Source: fastai/transforms.py (0.7):
// scale_min() — each side = max(floor(side·(sz/min_side)), sz), resized with
// cv2.INTER_AREA — and center_crop() — start = ceil((dim − sz)/2).
#ifndef CNNPIPE_IMAGE_GEOM_H
#define CNNPIPE_IMAGE_GEOM_H

// fast.ai's scale_min target size for a w×h image (scale_to()).
void fastai_scale_dims(int w, int h, int sz, int *tw, int *th);
// centre_crop start: ceil((dim - sz)/2).
int fastai_crop_start(int dim, int sz);

// src: (h, w, 3) u8 RGB, a (possibly DCT-downscaled) rendering of an image
// whose full size is full_w×full_h.  out: (sz, sz, 3) u8 RGB =
// centre_crop(scale_min(full image, sz), sz), with an exact area average
// (cv2.INTER_AREA).  Only the cropped window is computed.  Returns 0
// (-1 only for sz > 8192).
int image_scale_crop(const unsigned char *src, int w, int h, int full_w, int full_h,
                     int sz, unsigned char *out);

// Reference: plain 2-D area integration per output pixel (slow; the tests
// check image_scale_crop against it).
int image_scale_crop_ref(const unsigned char *src, int w, int h, int full_w, int full_h,
                         int sz, unsigned char *out);

#endif
