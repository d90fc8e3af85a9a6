#!/usr/bin/python3
"""qcow2patch.py: patch bytes of a qcow2 image that no tool writes (evil
samples for the safeimgfs tests). Layout knowledge comes from qcow2map.py.

usage: qcow2patch.py IMAGE OPERATION ARGS...
  header FIELD EXPR      set a header field (version, cluster_bits, size,
                         crypt_method, l1_size, l1_table_offset,
                         backing_file_offset, backing_file_size,
                         incompatible_features, header_length, refcount_order, ...)
  incompat-set BIT       set incompatible feature bit BIT (v3 only)
  incompat-clear BIT     clear incompatible feature bit BIT (v3 only)
  ext-u64 TYPE OFF EXPR  big-endian u64 at OFF inside the data of header
                         extension TYPE (fde: 0 offset, 8 length)
  ext-del TYPE           remove the header extension TYPE (hex, or one of
                         fde, backing_format, feature_names, bitmaps, data_file);
                         later extensions move up, the freed tail is zeroed
  l1 GUEST EXPR          replace the L1 entry that maps guest byte offset GUEST
  l2 GUEST EXPR          replace the (first word of the) L2 entry of the
                         guest cluster holding GUEST (its L2 table must exist)
  l2-bitmap GUEST EXPR   replace the subcluster bitmap (extended L2 only)
  luks-u16 OFF EXPR      big-endian u16 at OFF inside the embedded LUKS header
  luks-u32 OFF EXPR      big-endian u32 at OFF inside the embedded LUKS header
                         (LUKS1: 6 version, 164 digest iterations,
                          208 + 48*i + 4 key slot i iterations)
EXPR is a Python integer expression over: entry (the current value), l2
(current L2 table offset), host (current host cluster offset), l1_offset,
crypt_offset, crypt_length, refcount_table_offset, file_size, cluster_size,
size. Prints "OLD -> NEW at FILE_OFFSET". Exit 0, or 1 with a message.
"""
import os
import struct
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qcow2map  # noqa: E402

HEADER_FIELDS = {
    # name: (offset, struct format)
    "magic": (0, ">I"), "version": (4, ">I"), "backing_file_offset": (8, ">Q"),
    "backing_file_size": (16, ">I"), "cluster_bits": (20, ">I"), "size": (24, ">Q"),
    "crypt_method": (32, ">I"), "l1_size": (36, ">I"), "l1_table_offset": (40, ">Q"),
    "refcount_table_offset": (48, ">Q"), "refcount_table_clusters": (56, ">I"),
    "nb_snapshots": (60, ">I"), "snapshots_offset": (64, ">Q"),
    "incompatible_features": (72, ">Q"), "compatible_features": (80, ">Q"),
    "autoclear_features": (88, ">Q"), "refcount_order": (96, ">I"),
    "header_length": (100, ">I"),
}
EXT_ALIASES = {
    "fde": 0x0537BE77, "backing_format": 0xE2792ACA, "feature_names": 0x6803F857,
    "bitmaps": 0x23852875, "data_file": 0x44415441,
}


def die(msg):
    sys.stderr.write("qcow2patch.py: %s\n" % msg)
    sys.exit(1)


def rd(f, off, fmt):
    f.seek(off)
    b = f.read(struct.calcsize(fmt))
    if len(b) != struct.calcsize(fmt):
        die("read past the end of the file at %d" % off)
    return struct.unpack(fmt, b)[0]


def wr(f, off, fmt, val):
    old = rd(f, off, fmt)
    f.seek(off)
    f.write(struct.pack(fmt, val))
    print("0x%x -> 0x%x at %d" % (old, val, off))


def env_of(h, **extra):
    e = {
        "l1_offset": h["l1_table_offset"], "crypt_offset": h.get("crypt_offset", 0),
        "crypt_length": h.get("crypt_length", 0),
        "refcount_table_offset": h["refcount_table_offset"], "file_size": h["file_size"],
        "cluster_size": h["cluster_size"], "size": h["size"],
    }
    e.update(extra)
    return e


def evaluate(expr, env):
    try:
        v = eval(expr, {"__builtins__": {}}, env)
    except Exception as ex:  # a test tool: report any bad expression
        die("bad expression %r: %s" % (expr, ex))
    if not isinstance(v, int):
        die("expression %r is not an integer" % expr)
    return v


def ext_of(h, name):
    typ = EXT_ALIASES.get(name)
    if typ is None:
        typ = int(name, 16)
    hit = [e for e in h["extensions"] if e["type"] == typ]
    if not hit:
        die("no header extension 0x%08x" % typ)
    return hit[0]


def rec_of(f, h, guest):
    if guest >= h["size"]:
        die("guest offset %d is past the virtual size %d" % (guest, h["size"]))
    return qcow2map.cluster_record(f, h, guest // h["cluster_size"])


def main(argv):
    if len(argv) < 3:
        die("usage: qcow2patch.py IMAGE OPERATION ARGS... (see --help)")
    if argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    path, op, args = argv[1], argv[2], argv[3:]
    with open(path, "r+b") as f:
        try:
            h = qcow2map.parse_header(f)
        except (qcow2map.Qcow2Error, struct.error) as e:
            die("%s: %s" % (path, e))
        if op == "header" and len(args) == 2:
            if args[0] not in HEADER_FIELDS:
                die("unknown header field %s" % args[0])
            off, fmt = HEADER_FIELDS[args[0]]
            wr(f, off, fmt, evaluate(args[1], env_of(h, entry=rd(f, off, fmt))))
        elif op == "incompat-set" and len(args) == 1:
            if h["version"] < 3:
                die("incompatible features need a v3 header")
            old = rd(f, 72, ">Q")
            wr(f, 72, ">Q", old | (1 << int(args[0])))
        elif op == "incompat-clear" and len(args) == 1:
            if h["version"] < 3:
                die("incompatible features need a v3 header")
            old = rd(f, 72, ">Q")
            wr(f, 72, ">Q", old & ~(1 << int(args[0])))
        elif op == "ext-u64" and len(args) == 3:
            e = ext_of(h, args[0])
            rel = evaluate(args[1], env_of(h))
            if rel + 8 > e["length"]:
                die("offset %d is outside extension 0x%08x" % (rel, e["type"]))
            off = e["offset"] + 8 + rel
            wr(f, off, ">Q", evaluate(args[2], env_of(h, entry=rd(f, off, ">Q"))))
        elif op == "ext-del" and len(args) == 1:
            e = ext_of(h, args[0])
            typ = e["type"]
            start = e["offset"]
            size = 8 + ((e["length"] + 7) & ~7)
            end = h["extensions_end"]
            f.seek(start + size)
            rest = f.read(end - start - size)
            f.seek(start)
            f.write(rest + b"\0" * size)
            print("removed extension 0x%08x (%d bytes at %d)" % (typ, size, start))
        elif op in ("l1", "l2", "l2-bitmap") and len(args) == 2:
            r = rec_of(f, h, evaluate(args[0], env_of(h)))
            if op == "l1":
                off = r["l1_entry_offset"]
                cur = rd(f, off, ">Q")
            else:
                if r["l2_entry_offset"] is None:
                    die("guest cluster %d has no L2 table" % r["gcluster"])
                off = r["l2_entry_offset"]
                if op == "l2-bitmap":
                    if not h["extended_l2"]:
                        die("not an extended-L2 image")
                    off += 8
                cur = rd(f, off, ">Q")
            env = env_of(h, entry=cur, l2=r["l2_table"], host=r["host"] or 0)
            wr(f, off, ">Q", evaluate(args[1], env) & 0xFFFFFFFFFFFFFFFF)
        elif op in ("luks-u16", "luks-u32") and len(args) == 2:
            if not h.get("crypt_length"):
                die("no encryption header extension")
            rel = evaluate(args[0], env_of(h))
            fmt = ">H" if op == "luks-u16" else ">I"
            if rel + struct.calcsize(fmt) > h["crypt_length"]:
                die("offset %d is outside the encryption header" % rel)
            off = h["crypt_offset"] + rel
            wr(f, off, fmt, evaluate(args[1], env_of(h, entry=rd(f, off, fmt))))
        else:
            die("bad operation or arguments: %s %s" % (op, " ".join(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
