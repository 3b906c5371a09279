#!/usr/bin/env python3
"""The layer check of `make test` (ARCHITECTURE.md, "Layers").

Reads every quoted #include of the C sources and fails, naming file and line,
on an include that runs up or sideways across the floors, or that closes a
cycle between files:

    tools/                                     floor 3
    libcommon/engine/   libcommon/image/       floor 2 (siblings: neither includes the other)
    formats/            kernels/ (cpu/, cuda/) floor 1 (siblings)
    libcommon/util/                            floor 0

A file may include its own unit, a unit below its floor, and (kernels/cpu,
kernels/cuda) the generic kernels/ headers above it in its own unit; never a
sibling or a floor above.  Above kernels/, only the generic kernels/ headers
(backend.h, shapes.h): a backend's own files (kernels/cpu/, kernels/cuda/)
are reached through the table alone.  tests/ may include anything but no
cycle.

With --objects DIR it also reads the symbols of the library's objects (nm)
and fails on two source files that call into each other, directly or round
a longer loop: a cycle no #include shows.

usage: tests/check_layers.py [--objects BUILD_DIR] [ROOT]
"""
import os
import re
import subprocess
import sys

UNITS = [  # (prefix, floor, parent unit or None)
    ("libcommon/util/", 0, None),
    ("formats/", 1, None),
    ("kernels/cpu/", 1, "kernels/"),
    ("kernels/cuda/", 1, "kernels/"),
    ("kernels/", 1, None),
    ("libcommon/image/", 2, None),
    ("libcommon/engine/", 2, None),
    ("tools/", 3, None),
    ("tests/", 4, None),
]
# What the floors above kernels/ may reach of a backend: its table (for
# device_pick), nothing else; the graph goes through kernels/backend.h.
BACKEND_DOORS = ("kernels/cpu/backend.c", "kernels/cuda/backend.cu",
                 "kernels/cuda/absent.c")   # absent.c: a build without CUDA
SOURCE_DIRS = ("libcommon", "formats", "kernels", "tools", "tests")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def unit_of(path):
    for prefix, floor, parent in UNITS:
        if path.startswith(prefix):
            return prefix, floor, parent
    return None


def sources(root):
    out = []
    for top in SOURCE_DIRS:
        for dirpath, dirs, files in os.walk(os.path.join(root, top)):
            dirs[:] = [d for d in dirs if d not in ("corpus", "tmp")]
            for f in files:
                if f.endswith((".c", ".h", ".cu", ".cuh")):
                    out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(out)


def resolve(root, src, name):
    """A quoted include: the including file's folder first, then -I. (the
    root); None for a header from outside the tree (stb, system)."""
    for base in (os.path.dirname(src), ""):
        cand = os.path.normpath(os.path.join(base, name))
        if os.path.isfile(os.path.join(root, cand)):
            return cand
    return None


def allowed(src, dst):
    us, ud = unit_of(src), unit_of(dst)
    if us is None:
        return "outside every floor: move it into one (tests/check_layers.py)"
    if ud is None:
        return "%s is outside every floor" % dst
    (ps, fs, pars), (pd, fd, pard) = us, ud
    if fs == 4 or ps == pd or pd == pars:
        return None
    if pard == "kernels/" and fs >= 2 and dst not in BACKEND_DOORS:
        return ("%s is a backend's own file: above kernels/, only kernels/*.h "
                "(the backend table) and each backend's table itself" % dst)
    if fd < fs:
        return None
    what = "a sibling on the same floor" if fd == fs else "a floor above it"
    return "%s is %s (%s is floor %d, %s floor %d)" % (
        dst, what, pd.rstrip("/"), fd, ps.rstrip("/"), fs)


def find_cycle(graph):
    """One cycle of the graph as a list of nodes, or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {n: WHITE for n in graph}
    stack = []

    def visit(n):
        colour[n] = GREY
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if colour.get(m, WHITE) == GREY:
                return stack[stack.index(m):] + [m]
            if colour.get(m, WHITE) == WHITE:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        colour[n] = BLACK
        return None

    sys.setrecursionlimit(10000)
    for n in sorted(graph):
        if colour[n] == WHITE:
            c = visit(n)
            if c:
                return c
    return None


def check_includes(root):
    errors = []
    graph = {}
    for src in sources(root):
        graph.setdefault(src, set())
        with open(os.path.join(root, src), encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                dst = resolve(root, src, m.group(1))
                if dst is None:
                    continue
                graph[src].add(dst)
                why = allowed(src, dst)
                if why:
                    errors.append("%s:%d: includes against the layers: %s" % (src, lineno, why))
    cycle = find_cycle(graph)
    if cycle:
        errors.append("%s: include cycle: %s" % (cycle[0], " -> ".join(cycle)))
    return errors


def check_objects(root, objdir):
    """Symbol-level dependencies between the library's source files."""
    defined, needs = {}, {}
    for dirpath, _, files in os.walk(objdir):
        for f in files:
            if not f.endswith(".o"):
                continue
            obj = os.path.join(dirpath, f)
            stem = os.path.relpath(obj, objdir)[:-2]
            src = next((stem + ext for ext in (".c", ".cu")
                        if os.path.isfile(os.path.join(root, stem + ext))), None)
            if src is None or not src.startswith(("libcommon/", "formats/", "kernels/")):
                continue   # a tool, or a stale object of a moved file
            out = subprocess.run(["nm", "-P", obj], capture_output=True,
                                 text=True, check=True).stdout
            needs[src] = set()
            for line in out.splitlines():
                parts = line.split()
                if len(parts) < 2:
                    continue
                sym, kind = parts[0], parts[1]
                if kind == "U":
                    needs[src].add(sym)
                elif kind in "TDBRVWC":
                    defined.setdefault(sym, src)
    graph = {s: {defined[x] for x in need if x in defined and defined[x] != s}
             for s, need in needs.items()}
    errors = []
    for src, dsts in sorted(graph.items()):
        for dst in sorted(dsts):
            why = allowed(src, dst)
            if why:
                errors.append("%s: calls against the layers: %s" % (src, why))
    cycle = find_cycle(graph)
    if cycle:
        errors.append("%s: call cycle between files: %s" % (cycle[0], " -> ".join(cycle)))
    return errors


def main(argv):
    objdir = None
    args = argv[1:]
    if args[:1] == ["--objects"]:
        if len(args) < 2:
            print(__doc__.strip().splitlines()[-1], file=sys.stderr)
            return 2
        objdir, args = args[1], args[2:]
    root = args[0] if args else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    errors = check_includes(root)
    if objdir:
        errors += check_objects(root, objdir)
    for e in errors:
        print("check_layers: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
