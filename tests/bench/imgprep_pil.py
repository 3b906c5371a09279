#!/usr/bin/python3
"""The PIL side of tests/bench/imgprep.sh: imgprep's work (decode, EXIF,
resize shorter side, centre crop, write the pixels) in one process.
usage: imgprep_pil.py plain|draft|tuned SIZE OUT FILE...

plain: full decode, resize the whole image with BILINEAR, crop (as commonly
written).  draft: the same after draft() (libjpeg DCT scaling, the same
scale imgprep picks; Pillow's draft keeps ISLOW IDCT and fancy upsampling).
tuned: draft, no copies when there is nothing to rotate or convert, and
resize(box=) computing only the crop window (as imgprep does): output equal
to draft's within 1 level on a few pixels (checked on the bench photos)."""
import math
import sys

from PIL import Image, ImageOps


def main():
    mode, sz, out, files = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    with open(out, "wb") as f:
        for path in files:
            im = Image.open(path)
            w0, h0 = im.size
            if mode in ("draft", "tuned"):
                im.draft("RGB", (sz, sz))   # JPEG DCT scaling, shorter side >= sz
            orient = im.getexif().get(0x0112, 1)
            if orient in (5, 6, 7, 8):   # full-size dims as displayed
                w0, h0 = h0, w0
            if mode == "tuned":
                if orient != 1:
                    im = ImageOps.exif_transpose(im)
                if im.mode != "RGB":
                    im = im.convert("RGB")
            else:
                im = ImageOps.exif_transpose(im).convert("RGB")
            ratio = sz / min(w0, h0)
            tw, th = max(math.floor(w0 * ratio), sz), max(math.floor(h0 * ratio), sz)
            cx, cy = math.ceil((tw - sz) / 2), math.ceil((th - sz) / 2)
            if mode == "tuned":
                sx, sy = im.width / tw, im.height / th
                im = im.resize((sz, sz), Image.BILINEAR,
                               box=(cx * sx, cy * sy, (cx + sz) * sx, (cy + sz) * sy))
            else:
                im = im.resize((tw, th), Image.BILINEAR).crop((cx, cy, cx + sz, cy + sz))
            f.write(im.tobytes())


main()
