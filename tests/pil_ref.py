#!/usr/bin/python3
"""PIL reference for imgprep's geometry (run with Debian's /usr/bin/python3).

fast.ai 0.7 (fastai/transforms.py) does scale_min — each side =
max(floor(side * sz/min_side), sz), cv2.resize(..., INTER_AREA) — then
center_crop — start = ceil((dim - sz)/2).  The reference here does the same
with PIL: full-size decode, EXIF orientation applied (cv2.imread does),
centre crop.  The resize uses PIL's BILINEAR, which when shrinking is a tent
scaled to each output pixel's footprint: of PIL's filters it is the closest
to INTER_AREA's exact area average (what imgprep computes).  PIL's BOX is not
an area average: it weighs source pixels by whether their centres fall in
the footprint, so near ratio 1 (225 -> 224) it is nearest-neighbour and
differs from INTER_AREA by a mean of 2-5 levels on sharp content.

imgprep --scale S (no crop: the sources of augmentation) is fast.ai's
`resize` (fastai/dataset.py resize_img: the same scale_to sizes, PIL
Image.LINEAR = BILINEAR, enlarging too); scale_ref() is that, less the JPEG
re-save, with EXIF orientation applied as for the crop.

  pil_ref.py ref SIZE IMAGE OUT        write the (SIZE, SIZE, 3) u8 crop, raw
  pil_ref.py diff SIZE IMAGE RAW       print "mean max" abs difference vs RAW
  pil_ref.py dims W H SIZE             print fast.ai's target size and crop start
  pil_ref.py scale SIZE IMAGE OUT      write the scaled (H, W, 3) u8 image, raw;
                                       print "W H"
"""
import math
import sys

from PIL import Image, ImageOps

FILTERS = {"box": Image.BOX, "bilinear": Image.BILINEAR,
           "lanczos": Image.LANCZOS, "hamming": Image.HAMMING}


def dims(w, h, sz):
    ratio = sz / min(w, h)
    tw, th = max(math.floor(w * ratio), sz), max(math.floor(h * ratio), sz)
    return tw, th, math.ceil((tw - sz) / 2), math.ceil((th - sz) / 2)


def ref(path, sz, filt="bilinear"):
    im = Image.open(path)
    im = ImageOps.exif_transpose(im).convert("RGB")
    tw, th, cx, cy = dims(im.width, im.height, sz)
    im = im.resize((tw, th), FILTERS[filt])
    return im.crop((cx, cy, cx + sz, cy + sz)).tobytes()


def scale_ref(path, sz, filt="bilinear"):
    """fast.ai's resize_img to shorter side sz, no crop: (W, H, raw bytes)."""
    im = Image.open(path)
    im = ImageOps.exif_transpose(im).convert("RGB")
    tw, th, _, _ = dims(im.width, im.height, sz)
    return tw, th, im.resize((tw, th), FILTERS[filt]).tobytes()


def area_ref(arr, sz, crop=True):
    """Exact area average (cv2.INTER_AREA's definition) + centre crop of an
    (H, W, 3) array, in numpy: the geometry check, independent of PIL.
    crop=False: the whole scaled image (cx = cy = 0)."""
    import numpy as np

    def weights(src, dst):
        s = src / dst
        m = np.zeros((dst, src))
        for i in range(dst):
            a, b = i * s, min((i + 1) * s, src)
            for j in range(int(a), min(src, math.ceil(b))):
                m[i, j] = (min(b, j + 1) - max(a, j)) / (b - a)
        return m
    h, w = arr.shape[:2]
    tw, th, cx, cy = dims(w, h, sz)
    out = np.einsum("yj,jxc->yxc", weights(h, th),
                    np.einsum("xi,yic->yxc", weights(w, tw), arr.astype(float)))
    out = np.floor(out + 0.5).clip(0, 255).astype(np.uint8)
    return (out, cx, cy) if crop else out


def diff(a, b):
    assert len(a) == len(b), (len(a), len(b))
    d = [abs(x - y) for x, y in zip(a, b)]
    return sum(d) / len(d), max(d)


def main(argv):
    cmd = argv[1]
    if cmd == "dims":
        print(*dims(int(argv[2]), int(argv[3]), int(argv[4])))
    elif cmd == "ref":
        with open(argv[4], "wb") as f:
            f.write(ref(argv[3], int(argv[2])))
    elif cmd == "scale":
        tw, th, raw = scale_ref(argv[3], int(argv[2]))
        with open(argv[4], "wb") as f:
            f.write(raw)
        print(tw, th)
    elif cmd == "diff":
        filt = argv[5] if len(argv) > 5 else "bilinear"
        with open(argv[4], "rb") as f:
            mean, mx = diff(ref(argv[3], int(argv[2]), filt), f.read())
        print("%.3f %d" % (mean, mx))
    else:
        sys.exit("pil_ref.py: unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
