#!/usr/bin/python3
"""The PIL side of tests/bench/imgprep.sh: imgprep's work (decode, EXIF,
resize shorter side, centre crop, write the pixels) in one process.
usage: imgprep_pil.py plain|draft SIZE OUT FILE..."""
import math
import sys

from PIL import Image, ImageOps


def main():
    mode, sz, out, files = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    with open(out, "wb") as f:
        for path in files:
            im = Image.open(path)
            w0, h0 = im.size
            if mode == "draft":
                im.draft("RGB", (sz, sz))   # JPEG DCT scaling, shorter side >= sz
            im = ImageOps.exif_transpose(im).convert("RGB")
            ratio = sz / min(w0, h0)
            tw, th = max(math.floor(w0 * ratio), sz), max(math.floor(h0 * ratio), sz)
            cx, cy = math.ceil((tw - sz) / 2), math.ceil((th - sz) / 2)
            im = im.resize((tw, th), Image.BILINEAR).crop((cx, cy, cx + sz, cy + sz))
            f.write(im.tobytes())


main()
