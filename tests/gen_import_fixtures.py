#!/usr/bin/python3
"""Makes the importer fixtures under tests/fixtures/import/ (run with Debian's
/usr/bin/python3 and its torch 1.13; a few KB in all):

  sd_zip.pth        a small state_dict (conv, batch norm with
                    num_batches_tracked, linear, an f16 tensor, a view with a
                    storage offset, a transposed view) saved by torch.save
  sd_legacy.pth     the same, _use_new_zipfile_serialization=False
  sd.safetensors    F32/F16/BF16/F64/I64 tensors and __metadata__, written by
                    hand from the safetensors spec (no safetensors package)
  expected.stream   record 0: what importing either .pth must give,
                    record 1: what importing sd.safetensors must give
                    (floats as f32, integers as i64, views made contiguous)
  bad_*.pth         malformed checkpoints the importer must refuse:
                    deflated (compressed entry), storage_size (a storage
                    entry 4 bytes short), global_zip / global_legacy (a
                    pickle calling os.system -- written, never loaded)

    /usr/bin/python3 tests/gen_import_fixtures.py
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "import")
sys.path.insert(0, HERE)
from cnnpipe_stream import write_stream  # noqa: E402


def state_dict():
    torch.manual_seed(1)
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                            torch.nn.Flatten(), torch.nn.Linear(5, 2))
    # Non-trivial running statistics and a counter that is not zero.
    m.train()
    m[1](torch.randn(2, 4, 3, 3))
    m[1](torch.randn(2, 4, 3, 3))
    sd = m.state_dict()
    sd["half"] = (torch.randn(3, 2) * 100).half()
    base = torch.randn(4, 6)
    sd["offset"] = base[1:3]            # storage offset 6, contiguous
    sd["transposed"] = base.t()         # strides (1, 6)
    sd["column"] = base[:, 2:4]         # offset 2, strides (6, 1)
    sd["ints"] = torch.tensor([-3, 7, 1 << 40], dtype=torch.int64)
    return sd


def expected(sd):
    out = collections.OrderedDict()
    for k, v in sd.items():
        v = v.contiguous()
        out[k] = v.numpy().astype(np.int64 if not v.is_floating_point() else np.float32)
    return out


class Evil:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def legacy_bytes(obj):
    """The legacy layout around an arbitrary pickled object, no storages."""
    f = io.BytesIO()
    for x in (0x1950a86a20f9469cfc6c, 1001,
              dict(protocol_version=1001, little_endian=True,
                   type_sizes=dict(short=2, int=4, long=4))):
        pickle.dump(x, f, protocol=2)
    pickle.dump(obj, f, protocol=2)
    pickle.dump([], f, protocol=2)
    return f.getvalue()


def rezip(src, dst, edit):
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w") as zo:
        for info in zi.infolist():
            data, method = edit(info.filename, zi.read(info.filename))
            zo.writestr(info.filename, data, compress_type=method)


def safetensors(path):
    torch.manual_seed(2)
    tensors = collections.OrderedDict([
        ("conv.weight", torch.randn(2, 3, 2, 2)),
        ("half", (torch.randn(5) * 10).half()),
        ("brain", torch.randn(2, 3).bfloat16()),
        ("double", torch.randn(4, 1, dtype=torch.float64)),
        ("bn.num_batches_tracked", torch.tensor(12345678901, dtype=torch.int64)),
    ])
    codes = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.float64: "F64", torch.int64: "I64"}
    header, data = {"__metadata__": {"format": "pt", "note": "\u00e9\"\\"}}, b""
    for k, v in tensors.items():
        raw = v.contiguous().view(torch.uint8).numpy().tobytes() if v.dim() else \
            v.reshape(1).view(torch.uint8).numpy().tobytes()
        header[k] = {"dtype": codes[v.dtype], "shape": list(v.shape),
                     "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)           # the reference pads with spaces
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)
    out = collections.OrderedDict()
    for k, v in tensors.items():
        out[k] = v.float().numpy() if v.is_floating_point() else v.numpy()
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    p = lambda n: os.path.join(OUT, n)
    sd = state_dict()
    torch.save(sd, p("sd_zip.pth"))
    torch.save(sd, p("sd_legacy.pth"), _use_new_zipfile_serialization=False)
    st_expect = safetensors(p("sd.safetensors"))
    write_stream(p("expected.stream"), {"kind": "import-fixtures"},
                 [expected(sd), st_expect])

    rezip(p("sd_zip.pth"), p("bad_deflated.pth"),
          lambda n, d: (d, zipfile.ZIP_DEFLATED))
    rezip(p("sd_zip.pth"), p("bad_storage_size.pth"),
          lambda n, d: (d[:-4] if n.endswith("/data/0") else d, zipfile.ZIP_STORED))
    evil = pickle.dumps(collections.OrderedDict(w=Evil()), protocol=2)
    rezip(p("sd_zip.pth"), p("bad_global_zip.pth"),
          lambda n, d: (evil if n.endswith("/data.pkl") else d, zipfile.ZIP_STORED))
    with open(p("bad_global_legacy.pth"), "wb") as f:
        f.write(legacy_bytes(collections.OrderedDict(w=Evil())))
    for n in sorted(os.listdir(OUT)):
        print("%8d %s" % (os.path.getsize(p(n)), n))


if __name__ == "__main__":
    main()
