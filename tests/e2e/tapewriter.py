#!/usr/bin/env python3
"""A tape writer that pauses, run in the guest: tapewriter.py NST GO-FILE [BLOCKS].

Opens NST (the non-rewinding node) for writing, writes BLOCKS (default 3) tagged
64 KiB blocks, prints "paused", waits until GO-FILE exists (the scenario
renumbers the tape meanwhile), then tries BLOCKS more writes and the close.
Prints one line per step ("write 4: ok", "write 5: EIO", "close: ok") and
"summary: W written after the pause, close ok|EIO". Exit 0 whatever the
outcome: the scenario judges it.
"""

import errno
import os
import struct
import sys
import time


def block(n):
    return struct.pack(">HH", 7, n) + bytes(65532)


def main():
    node, go = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    fd = os.open(node, os.O_WRONLY)
    for n in range(count):
        assert os.write(fd, block(n)) == 65536
    print("paused", flush=True)
    while not os.path.exists(go):
        time.sleep(0.05)
    after = 0
    for n in range(count, 2 * count):
        try:
            os.write(fd, block(n))
            after += 1
            print("write %d: ok" % n, flush=True)
        except OSError as exc:
            print("write %d: %s" % (n, errno.errorcode.get(exc.errno, exc.errno)), flush=True)
    try:
        os.close(fd)
        closed = "ok"
    except OSError as exc:
        closed = errno.errorcode.get(exc.errno, str(exc.errno))
    print("close: %s" % closed)
    print("summary: %d written after the pause, close %s" % (after, closed))


if __name__ == "__main__":
    main()
