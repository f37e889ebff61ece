#!/usr/bin/env python3
"""Makes the example portfolio's write-up images from real program output.

content/projects/minirt/terminal.png: miniRT (the write-up's own C sources) renders its demo
scene into a 24-bit-colour terminal as upper-half blocks, each character cell two pixels
(foreground above, background below). This script builds it, runs it at 200x56 cells, reads
the escape codes back into pixels and writes them, each pixel scaled to 4x4 (so the cells
stay visible), as a PNG. Needs cc and make; no Python packages.

Run from the repository root: python3 scripts/example-images.py
"""
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "content/projects/minirt/src")
OUT = os.path.join(ROOT, "content/projects/minirt/terminal.png")
COLS, ROWS, SCALE = 200, 56, 4


def png(width, height, rows):
    """A truecolour PNG from rows of (r, g, b) tuples."""
    raw = b"".join(b"\0" + bytes(c for px in row for c in px) for row in rows)
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        shutil.copytree(SRC, src)
        subprocess.run(["make", "-s"], cwd=src, check=True)
        out = subprocess.run(["./minirt", "-w", str(COLS), "-h", str(ROWS), "scenes/demo.rt"],
                             cwd=src, check=True, capture_output=True).stdout.decode()
    cell = re.compile(r"\x1b\[38;2;(\d+);(\d+);(\d+)m\x1b\[48;2;(\d+);(\d+);(\d+)m\u2580")
    lines = [l for l in out.split("\n") if "\u2580" in l]
    pixels = []
    for line in lines:
        cells = cell.findall(line)
        top = [tuple(int(v) for v in c[:3]) for c in cells]
        bottom = [tuple(int(v) for v in c[3:]) for c in cells]
        pixels += [top, bottom]
    width = len(pixels[0])
    assert all(len(r) == width for r in pixels), "ragged output"
    rows = [[px for px in row for _ in range(SCALE)] for row in pixels for _ in range(SCALE)]
    with open(OUT, "wb") as f:
        f.write(png(width * SCALE, len(pixels) * SCALE, rows))
    print(f"{os.path.relpath(OUT, ROOT)}: {width * SCALE}x{len(pixels) * SCALE}")


if __name__ == "__main__":
    main()
