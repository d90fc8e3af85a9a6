#!/usr/bin/python3
"""qcow2map.py: walk a qcow2 image's L1/L2 tables and print where every guest
cluster (and, with extended L2 entries, every subcluster) lives.

Written from qemu's docs/interop/qcow2.txt for the safeimgfs tests: `qemu-img
map` hides host offsets of encrypted images, and the tests need an
allocation map computed independently of both qemu and safeimgfs.

usage: qcow2map.py [--json | --json-clusters | --runs | --clusters | --header] IMAGE
  --clusters  (default) one line per piece of the guest address space:
              GUEST_START GUEST_END STATE [HOST]   (STATE: data, zero,
              zero-alloc (zero flag with a host cluster kept), unalloc,
              compressed, invalid); adjacent clusters/subclusters with the
              same state and contiguous host offsets form one piece
  --runs      the guest address space [0, size) as merged runs:
              "data START END" / "hole START END"; data = allocated (or
              compressed) clusters/subclusters, hole = unallocated or zero
  --json      one JSON document: header fields, extensions, L1/L2 table
              location, "pieces" ([start, end, state, host] as for
              --clusters), "runs" ([kind, start, end] as for --runs),
              "problems" (reserved bits and the like)
  --json-clusters  the same plus "clusters": one record per guest cluster
              with the file offsets and values of its L1 and L2 entries
  --header    the header fields only, one "name value" per line
Only the L1 entries that map the virtual disk are followed (entries past
size_to_l1(size) may map snapshot VM state). Nothing is validated beyond
what is needed to walk safely: reserved bits are reported, not fatal.
The module is also imported by qcow2patch.py.
"""
import json
import struct
import sys

MAGIC = b"QFI\xfb"
EXT_NAMES = {
    0xE2792ACA: "backing_format",
    0x6803F857: "feature_names",
    0x23852875: "bitmaps",
    0x0537BE77: "full_disk_encryption",
    0x44415441: "data_file",
}
L1_OFFSET_MASK = 0x00FFFFFFFFFFFE00
L1_RESERVED = 0x7F000000000001FF
L2_OFFSET_MASK = 0x00FFFFFFFFFFFE00
L2_RESERVED = 0x3F000000000001FE
COPIED = 1 << 63
COMPRESSED = 1 << 62


class Qcow2Error(Exception):
    pass


def be32(b, o):
    return struct.unpack_from(">I", b, o)[0]


def be64(b, o):
    return struct.unpack_from(">Q", b, o)[0]


def parse_header(f):
    """Header fields and extensions of the open qcow2 file f."""
    f.seek(0, 2)
    fsize = f.tell()
    f.seek(0)
    b = f.read(min(fsize, 1 << 21))
    if len(b) < 72 or b[:4] != MAGIC:
        raise Qcow2Error("not a qcow2 image")
    h = {"file_size": fsize}
    h["version"] = be32(b, 4)
    h["backing_file_offset"] = be64(b, 8)
    h["backing_file_size"] = be32(b, 16)
    h["cluster_bits"] = be32(b, 20)
    h["size"] = be64(b, 24)
    h["crypt_method"] = be32(b, 32)
    h["l1_size"] = be32(b, 36)
    h["l1_table_offset"] = be64(b, 40)
    h["refcount_table_offset"] = be64(b, 48)
    h["refcount_table_clusters"] = be32(b, 56)
    h["nb_snapshots"] = be32(b, 60)
    h["snapshots_offset"] = be64(b, 64)
    if not 9 <= h["cluster_bits"] <= 30:
        raise Qcow2Error("cluster_bits %d out of range" % h["cluster_bits"])
    cs = 1 << h["cluster_bits"]
    h["cluster_size"] = cs
    if h["version"] >= 3:
        if len(b) < 104:
            raise Qcow2Error("v3 header truncated")
        h["incompatible_features"] = be64(b, 72)
        h["compatible_features"] = be64(b, 80)
        h["autoclear_features"] = be64(b, 88)
        h["refcount_order"] = be32(b, 96)
        h["header_length"] = be32(b, 100)
        h["compression_type"] = b[104] if h["header_length"] > 104 else 0
    else:
        h["incompatible_features"] = 0
        h["compatible_features"] = 0
        h["autoclear_features"] = 0
        h["refcount_order"] = 4
        h["header_length"] = 72
        h["compression_type"] = 0
    inc = h["incompatible_features"]
    h["dirty"] = bool(inc & 1)
    h["corrupt"] = bool(inc & 2)
    h["external_data_file"] = bool(inc & 4)
    h["extended_l2"] = bool(inc & 16)
    # Header extensions: from header_length to the backing file name, or to
    # the end of the first cluster.
    end = h["backing_file_offset"] or cs
    end = min(end, cs, len(b))
    exts = []
    off = h["header_length"]
    while off + 8 <= end:
        typ, ln = be32(b, off), be32(b, off + 4)
        if typ == 0:
            exts.append({"type": 0, "name": "end", "offset": off, "length": 0})
            break
        if ln > end - off - 8:
            exts.append({"type": typ, "name": "truncated", "offset": off, "length": ln})
            break
        e = {"type": typ, "name": EXT_NAMES.get(typ, "unknown"), "offset": off, "length": ln}
        data = b[off + 8:off + 8 + ln]
        if typ == 0x0537BE77 and ln == 16:
            e["crypt_offset"], e["crypt_length"] = struct.unpack(">QQ", data)
            h["crypt_offset"], h["crypt_length"] = e["crypt_offset"], e["crypt_length"]
        elif typ in (0xE2792ACA, 0x44415441):
            e["value"] = data.decode("utf-8", "replace")
        exts.append(e)
        off += 8 + ((ln + 7) & ~7)
    h["extensions"] = exts
    h["extensions_end"] = end
    if h["backing_file_offset"]:
        bo, bl = h["backing_file_offset"], h["backing_file_size"]
        h["backing_file"] = b[bo:bo + bl].decode("utf-8", "replace")
    ebits = 16 if h["extended_l2"] else 8
    h["l2_entry_len"] = ebits
    h["l2_entries"] = cs // ebits
    h["subclusters"] = 32 if h["extended_l2"] else 1
    h["subcluster_size"] = cs // h["subclusters"]
    clusters = (h["size"] + cs - 1) // cs
    h["guest_clusters"] = clusters
    h["l1_used"] = (clusters + h["l2_entries"] - 1) // h["l2_entries"]
    return h


def decode_l2(h, w, bm):
    """Decodes one L2 entry (first word w, bitmap bm or None).
    Returns (kind, host, subs, problems): kind "standard" or "compressed",
    host the host cluster offset (None if 0), subs one state per subcluster
    (data, zero, zero-alloc, unalloc, compressed, invalid)."""
    nsub = h["subclusters"]
    problems = []
    if w & COMPRESSED:
        x = 62 - (h["cluster_bits"] - 8)
        return "compressed", w & ((1 << x) - 1), ["compressed"] * nsub, problems
    if w & L2_RESERVED:
        problems.append("L2 reserved bits 0x%x" % (w & L2_RESERVED))
    host = (w & L2_OFFSET_MASK) or None
    if h["extended_l2"]:
        if w & 1:
            problems.append("zero bit set in an extended L2 entry")
        subs = []
        for i in range(32):
            a, z = (bm >> i) & 1, (bm >> (32 + i)) & 1
            if a and z:
                subs.append("invalid")
            elif a:
                subs.append("data" if host else "invalid")
            elif z:
                subs.append("zero")
            else:
                subs.append("unalloc")
        return "standard", host, subs, problems
    if w & 1:
        st = "zero-alloc" if host else "zero"
    elif host:
        st = "data"
    else:
        st = "unalloc"
    return "standard", host, [st], problems


def _l1(f, h):
    n_l1 = min(h["l1_size"], h["l1_used"])
    f.seek(h["l1_table_offset"])
    raw = f.read(8 * n_l1)
    if len(raw) < 8 * n_l1:
        raise Qcow2Error("L1 table at %d is truncated" % h["l1_table_offset"])
    return struct.unpack(">%dQ" % n_l1, raw)


def cluster_record(f, h, gc, l1=None):
    """Everything about guest cluster gc: gcluster, guest (byte offset),
    l1_index, l1_entry_offset (file offset of its L1 entry), l1_entry,
    l2_table (0 = none), l2_entry_offset (file offset of its L2 entry, or
    None), l2_entry, bitmap (extended L2), host (host cluster offset or
    None), kind ("standard", "compressed", "none"), subs (one state per
    subcluster), problems."""
    if l1 is None:
        l1 = _l1(f, h)
    l1i, l2i = divmod(gc, h["l2_entries"])
    rec = {"gcluster": gc, "guest": gc * h["cluster_size"], "l1_index": l1i,
           "l1_entry_offset": h["l1_table_offset"] + 8 * l1i, "l1_entry": None,
           "l2_table": 0, "l2_entry_offset": None, "l2_entry": None, "bitmap": None,
           "host": None, "kind": "none", "subs": ["unalloc"] * h["subclusters"], "problems": []}
    if l1i >= len(l1):
        return rec
    l1e = rec["l1_entry"] = l1[l1i]
    if l1e & L1_RESERVED:
        rec["problems"].append("L1 reserved bits 0x%x" % (l1e & L1_RESERVED))
    l2 = rec["l2_table"] = l1e & L1_OFFSET_MASK
    if not l2:
        return rec
    eo = rec["l2_entry_offset"] = l2 + l2i * h["l2_entry_len"]
    f.seek(eo)
    e = f.read(h["l2_entry_len"])
    if len(e) < h["l2_entry_len"]:
        rec["problems"].append("L2 entry past the end of the file")
        rec["subs"] = ["invalid"] * h["subclusters"]
        return rec
    w = rec["l2_entry"] = be64(e, 0)
    bm = rec["bitmap"] = be64(e, 8) if h["extended_l2"] else None
    rec["kind"], rec["host"], rec["subs"], p = decode_l2(h, w, bm)
    rec["problems"] += p
    return rec


def walk(f, h):
    """cluster_record() of every guest cluster (slow for big images)."""
    l1 = _l1(f, h)
    return [cluster_record(f, h, gc, l1) for gc in range(h["guest_clusters"])]


class _Pieces:
    """Accumulates (start, end, state, host) pieces, merging a piece into
    the previous one when the state is the same and the host offsets are
    contiguous (or both absent); compressed clusters never merge."""

    def __init__(self, size):
        self.size = size
        self.out = []
        self.problems = []

    def add(self, start, end, state, host):
        end = min(end, self.size)
        if start >= end:
            return
        if self.out:
            ps, pe, pst, ph = self.out[-1]
            if pe == start and pst == state and state != "compressed" and (
                    (host is None and ph is None) or
                    (host is not None and ph is not None and ph + (pe - ps) == host)):
                self.out[-1] = (ps, end, state, ph)
                return
        self.out.append((start, end, state, host))


def pieces(f, h):
    """The guest address space [0, size) as merged pieces
    (start, end, state, host_of_start), plus a list of problems."""
    cs, ss, elen = h["cluster_size"], h["subcluster_size"], h["l2_entry_len"]
    acc = _Pieces(h["size"])
    l1 = _l1(f, h)
    span = h["l2_entries"] * cs
    for l1i in range(h["l1_used"]):
        base = l1i * span
        l1e = l1[l1i] if l1i < len(l1) else 0
        if l1e & L1_RESERVED:
            acc.problems.append("L1 entry %d: reserved bits 0x%x" % (l1i, l1e & L1_RESERVED))
        l2 = l1e & L1_OFFSET_MASK
        if not l2:
            acc.add(base, base + span, "unalloc", None)
            continue
        f.seek(l2)
        table = f.read(cs)
        n = min(h["l2_entries"], h["guest_clusters"] - l1i * h["l2_entries"])
        if len(table) < n * elen:
            acc.problems.append("L2 table at %d is truncated" % l2)
            table += b"\0" * (n * elen - len(table))
        words = struct.unpack_from(">%dQ" % (n * elen // 8), table)
        for j in range(n):
            g = base + j * cs
            if elen == 8:
                w, bm = words[j], None
                if w == 0:
                    acc.add(g, g + cs, "unalloc", None)
                    continue
            else:
                w, bm = words[2 * j], words[2 * j + 1]
            kind, host, subs, p = decode_l2(h, w, bm)
            acc.problems += ["guest cluster %d: %s" % (base // cs + j, x) for x in p]
            for i, st in enumerate(subs):
                hh = None
                if st in ("data", "zero-alloc", "invalid") and host:
                    hh = host + i * ss
                elif st == "compressed":
                    hh = host
                acc.add(g + i * ss, g + (i + 1) * ss, st, hh)
    return acc.out, acc.problems


def runs(h, pcs):
    """Merged data/hole runs covering [0, size): data = allocated (or
    compressed, or invalid) clusters/subclusters; hole = unallocated or zero."""
    out = []
    for start, end, st, _ in pcs:
        kind = "data" if st in ("data", "compressed", "invalid") else "hole"
        if out and out[-1][0] == kind and out[-1][2] == start:
            out[-1][2] = end
        else:
            out.append([kind, start, end])
    return [tuple(x) for x in out]


def load(path):
    """(header, pieces, problems) of the qcow2 image at path."""
    with open(path, "rb") as f:
        h = parse_header(f)
        pcs, problems = pieces(f, h)
    return h, pcs, problems


def main(argv):
    mode = "--clusters"
    args = []
    for a in argv[1:]:
        if a in ("--json", "--json-clusters", "--runs", "--clusters", "--header"):
            mode = a
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            args.append(a)
    if len(args) != 1:
        sys.stderr.write("usage: qcow2map.py [--json|--json-clusters|--runs|--clusters|--header] IMAGE\n")
        return 2
    try:
        with open(args[0], "rb") as f:
            h = parse_header(f)
            if mode == "--header":
                for k, v in h.items():
                    if k != "extensions":
                        print(k, v)
                for e in h["extensions"]:
                    print("extension 0x%08x %s at %d len %d" % (e["type"], e["name"], e["offset"], e["length"]))
                return 0
            pcs, problems = pieces(f, h)
            recs = walk(f, h) if mode == "--json-clusters" else None
    except (OSError, Qcow2Error, struct.error) as e:
        sys.stderr.write("qcow2map.py: %s: %s\n" % (args[0], e))
        return 1
    if mode == "--runs":
        for kind, s, e in runs(h, pcs):
            print(kind, s, e)
    elif mode in ("--json", "--json-clusters"):
        doc = dict(h)
        doc["pieces"] = pcs
        doc["runs"] = runs(h, pcs)
        doc["problems"] = problems
        if recs is not None:
            doc["clusters"] = recs
        json.dump(doc, sys.stdout)
        print()
    else:
        print("# version %d cluster_size %d size %d crypt_method %d extended_l2 %s l1 %d@%d"
              % (h["version"], h["cluster_size"], h["size"], h["crypt_method"], h["extended_l2"],
                 h["l1_size"], h["l1_table_offset"]))
        for s, e, st, host in pcs:
            print("%d %d %s%s" % (s, e, st, "" if host is None else " %d" % host))
        for p in problems:
            print("# %s" % p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
