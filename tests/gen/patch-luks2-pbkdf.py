#!/usr/bin/python3
"""Edit a PBKDF cost in a LUKS2 header in place, keeping both checksums valid.

usage: patch-luks2-pbkdf.py IMAGE [--slot ID | --digest ID]
                            [--field NAME] [--value N] [--check]

Default: keyslots["0"].kdf's cost := 2000000000, the cost being "iterations"
for pbkdf2 and "time" for argon2i/argon2id. With --digest ID the field of
digests[ID] is changed instead (a pbkdf2 digest). --field picks another KDF
field (e.g. "memory" or "cpus" for argon2). --check only verifies both
header copies and exits 0 (valid) or 1.

LUKS2 on-disk layout (cryptsetup docs/on-disk-format-luks2.pdf), big-endian:
binary header of 4096 bytes: 0 magic[6] ("LUKS\\xba\\xbe" primary,
"SKUL\\xba\\xbe" secondary), 6 u16 version=2, 8 u64 hdr_size, 16 u64 seqid,
24 label[48], 72 checksum_alg[32], 104 salt[64], 168 uuid[40],
208 subsystem[48], 256 u64 hdr_offset, 448 csum[64]; then the JSON area
(hdr_size - 4096 bytes, NUL padded). The primary copy is at 0, the secondary
at hdr_size. csum = hash(binary header with csum zeroed || JSON area).
Both copies get the same new JSON and their own recomputed checksum; the
checksums of the input are verified first, so a wrong checksum algorithm here
would be caught before anything is written.
"""
import hashlib
import json
import struct
import sys

CSUM_OFF, CSUM_LEN = 448, 64


def read_copy(f, off, magic):
    f.seek(off)
    b = f.read(4096)
    if len(b) != 4096 or b[:6] != magic or struct.unpack(">H", b[6:8])[0] != 2:
        raise ValueError("no LUKS2 header with magic %r at %d" % (magic, off))
    hdr_size = struct.unpack(">Q", b[8:16])[0]
    if hdr_size < 16384 or hdr_size > 4 << 20 or hdr_size % 4096:
        raise ValueError("bad hdr_size %d at %d" % (hdr_size, off))
    if struct.unpack(">Q", b[256:264])[0] != off:
        raise ValueError("hdr_offset field is not %d" % off)
    js = f.read(hdr_size - 4096)
    if len(js) != hdr_size - 4096:
        raise ValueError("short JSON area at %d" % off)
    return bytearray(b), hdr_size, js


def checksum(binhdr, js):
    alg = binhdr[72:104].split(b"\0", 1)[0].decode("ascii")
    h = hashlib.new(alg)
    z = bytearray(binhdr)
    z[CSUM_OFF:CSUM_OFF + CSUM_LEN] = b"\0" * CSUM_LEN
    h.update(bytes(z))
    h.update(js)
    d = h.digest()
    return d + b"\0" * (CSUM_LEN - len(d))


def main(argv):
    args = argv[1:]
    image = None
    kind, ident, field, value, check = "keyslots", "0", None, 2000000000, False
    while args:
        a = args.pop(0)
        if a == "--slot":
            kind, ident = "keyslots", args.pop(0)
        elif a == "--digest":
            kind, ident = "digests", args.pop(0)
        elif a == "--field":
            field = args.pop(0)
        elif a == "--value":
            value = int(args.pop(0))
        elif a == "--check":
            check = True
        elif a.startswith("-") or image is not None:
            sys.stderr.write(__doc__)
            return 2
        else:
            image = a
    if image is None:
        sys.stderr.write(__doc__)
        return 2
    with open(image, "r+b") as f:
        try:
            b1, size1, js1 = read_copy(f, 0, b"LUKS\xba\xbe")
            b2, size2, js2 = read_copy(f, size1, b"SKUL\xba\xbe")
        except ValueError as e:
            sys.stderr.write("%s: %s\n" % (image, e))
            return 1
        for name, b, js in (("primary", b1, js1), ("secondary", b2, js2)):
            if checksum(b, js) != bytes(b[CSUM_OFF:CSUM_OFF + CSUM_LEN]):
                sys.stderr.write("%s: %s header checksum mismatch\n" % (image, name))
                return 1
        if check:
            return 0
        if size1 != size2 or js1 != js2:
            sys.stderr.write("%s: header copies differ; refusing to patch\n" % image)
            return 1
        meta = json.loads(js1.split(b"\0", 1)[0].decode("utf-8"))
        try:
            obj = meta[kind][ident]
            target = obj["kdf"] if kind == "keyslots" else obj
        except KeyError:
            sys.stderr.write("%s: no %s %s\n" % (image, kind, ident))
            return 1
        if field is None:
            field = "time" if "time" in target else "iterations"
        if field not in target:
            sys.stderr.write("%s: %s %s has no field %s\n" % (image, kind, ident, field))
            return 1
        target[field] = value
        text = json.dumps(meta, separators=(",", ":")).encode("utf-8")
        area = size1 - 4096
        if len(text) >= area:
            sys.stderr.write("%s: new JSON does not fit\n" % image)
            return 1
        newjs = text + b"\0" * (area - len(text))
        for off, b in ((0, b1), (size1, b2)):
            b[CSUM_OFF:CSUM_OFF + CSUM_LEN] = checksum(b, newjs)
            f.seek(off)
            f.write(bytes(b))
            f.write(newjs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
