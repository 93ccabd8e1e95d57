#!/usr/bin/env python3
"""Tagged tape I/O check, run in the guest: tapeio.py DEV [FILES] [SIZE].

Writes FILES (e.g. "5,3": blocks per tape file) of SIZE-byte blocks whose first
4 bytes carry (file, block), each file closed by a filemark; rewinds, reads
back and compares (scsi_debug keeps only those 4 bytes per block), checks the
filemarks and, with several files, `fsf 1`. Prints one summary line.
"""

import os
import struct
import subprocess
import sys


def main():
    dev = sys.argv[1]
    files = tuple(int(n) for n in (sys.argv[2] if len(sys.argv) > 2 else "4,2").split(","))
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 65536

    def block(f, b):
        return struct.pack(">HH", f, b) + bytes(size - 4)

    def mt(*args):
        subprocess.run(["mt", "-f", dev] + list(args), check=True)

    mt("rewind")
    mt("setblk", "0")
    for f, count in enumerate(files):  # closing after writes adds a filemark
        fd = os.open(dev, os.O_WRONLY)
        for b in range(count):
            assert os.write(fd, block(f, b)) == size, "short write"
        os.close(fd)
    mt("rewind")
    fd = os.open(dev, os.O_RDONLY)
    for f, count in enumerate(files):
        for b in range(count):
            data = os.read(fd, 1 << 20)
            assert data == block(f, b), "file %d block %d: got %d bytes %r" % (
                f, b, len(data), data[:4])
        assert os.read(fd, 1 << 20) == b"", "no filemark after file %d" % f
    os.close(fd)
    if len(files) > 1:
        mt("rewind")
        mt("fsf", "1")
        fd = os.open(dev, os.O_RDONLY)
        data = os.read(fd, 1 << 20)
        os.close(fd)
        assert data == block(1, 0), "after fsf 1: %r" % data[:4]
    mt("rewind")
    print("%s: %d files, %d blocks of %d bytes written, read back and compared" % (
        dev, len(files), sum(files), size))


if __name__ == "__main__":
    main()
