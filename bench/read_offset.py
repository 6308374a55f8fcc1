#!/usr/bin/env python3
"""How fast the kernel copies a `read` into a buffer, by where the buffer starts in its page.

Why `src/pipeline/read_buf.rs` exists: glibc puts large buffers 16 bytes past a page
boundary, and on some CPUs the kernel's copy into such a buffer from the page
cache or a pipe is several times slower than into an aligned one. This reads FILE in
128 KiB reads into a buffer starting at each page offset and prints the time per offset
and its ratio to offset 0, measured in the same run (best of --rounds, offsets taking
turns). On a CPU without the slow case every ratio is about 1.

usage: python3 bench/read_offset.py FILE [--rounds 3] [--offsets 0,8,16,24,32,64,2048]
"""
import argparse
import mmap
import os
import time

CHUNK = 128 << 10


def read_all(fd, view):
    """Reads the whole file through `view`, CHUNK bytes at a time; returns seconds."""
    os.lseek(fd, 0, os.SEEK_SET)
    start = time.perf_counter()
    while os.readv(fd, [view]) > 0:
        pass
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--offsets", default="0,8,16,24,32,64,2048")
    args = ap.parse_args()
    offsets = [int(o) for o in args.offsets.split(",")]
    buf = mmap.mmap(-1, CHUNK + 2 * mmap.PAGESIZE)  # page-aligned
    buf.write(b"\0" * len(buf))  # fault the pages in before timing
    views = {o: memoryview(buf)[o:o + CHUNK] for o in offsets}
    fd = os.open(args.file, os.O_RDONLY)
    read_all(fd, views[offsets[0]])  # bring the file into the page cache
    best = {o: float("inf") for o in offsets}
    for _ in range(args.rounds):
        for o in offsets:
            best[o] = min(best[o], read_all(fd, views[o]))
    os.close(fd)
    size = os.path.getsize(args.file)
    base = 0 if 0 in best else offsets[0]
    print(f"{size / (1 << 20):.0f} MiB in {CHUNK >> 10} KiB reads, best of {args.rounds}")
    print(f"| {'page offset':>11} | {'time':>9} | {'MiB/s':>7} | vs offset {base} |")
    print("|-------------|-----------|---------|-------------|")
    for o in offsets:
        print(f"| {o:>11} | {best[o] * 1000:>6.1f} ms | {size / (1 << 20) / best[o]:>7.0f} | "
              f"{best[o] / best[base]:>10.2f}x |")
    for v in views.values():
        v.release()
    buf.close()


if __name__ == "__main__":
    main()
