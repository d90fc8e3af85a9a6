#!/bin/bash
# Integration test: plaintext views of qcow2+LUKS images (encrypt.format=luks).
#
# Store: images made by qemu-img create + qemu-io (generators in
# tests/gen/qcow2.sh), each with random data written at scattered guest
# offsets (including the last, partial cluster), zero writes (`write -z`) over
# unallocated and over allocated clusters (zero flag with and without a kept
# host cluster), and L2 spans without any table:
#   c4k-v3      4 KiB clusters, compat=1.1, size 10 MiB + 7680 (not a multiple
#               of the cluster size), writes across an L2 table boundary;
#               AES-128-CBC-ESSIV:SHA256
#   c2m-v3      2 MiB clusters, size 10 MiB + 7680 (last cluster partial);
#               AES-256-CBC-ESSIV:SHA256
#   c64k-v2     compat=0.10 (v2: no zero flag), size 32 MiB + 512
#   c512-v3     512-byte clusters (the smallest), many L2 tables
#   c64k-xl2    extended_l2=on: 2 KiB subclusters, data in odd subclusters,
#               zero subclusters over unallocated and allocated ones
#   c16k-xl2    extended_l2=on with 512-byte subclusters, size 8 MiB + 1536;
#               AES-128-XTS (the others: qemu's default AES-256-XTS-PLAIN64)
#   c2m-xl2     extended_l2=on with 64 KiB subclusters, size 10 MiB + 7680
# and copies of one empty 8 MiB template, 64 KiB clusters, compat=1.1 (every
# qemu LUKS creation costs seconds of PBKDF benchmarking, a copy nothing):
#   c64k-v3     grown to 64 MiB: unaligned writes (qemu does the
#               read-modify-write), zero clusters between data clusters
#   fromraw     `qemu-img convert -n` of a raw file with zero stretches
#   prealloc    grown by 4 MiB with --preallocation=metadata (clusters
#               allocated but never written: both sides decrypt the same bytes)
#   snapvm      data, an internal snapshot, overwrites (L2 entries without the
#               copied flag: the view is the active state), then VM state
#               (`qemu-io write -b`, mapped by an L1 entry past the virtual
#               disk: l1_size > what the size needs; never exposed)
#   resized     data at 4 and 9 MiB of 10 MiB, `qemu-img resize --shrink` to
#               5 MiB + 512 (data past the end discarded), then grown to
#               20 MiB + 512
#   many-l2     grown to 35 GiB: 70 L2 tables, more than the daemon's L2
#               cache holds (64 of 64 KiB), data in each 512 MiB span; the
#               view is compared on every data run and 2000 random probes
#               instead of a whole-file sha256
# The reference plaintext of each is `qemu-img convert -U ... -O raw`
# (qemu's own decryption), and the allocation map comes from qcow2map.py
# (walks the L1/L2 tables of the image file; cross-checked against
# `qemu-img map` of the encrypted image, which shows data/zero but no
# offsets). Checks for each view:
#   - status.json and safeimg-inspect --json: accepted, inner.raw,
#     outer_format qcow2+luks, inner_format raw, size = virtual size; the
#     inspector's encryption.cipher and key_bits are the ones created;
#   - st_size = virtual size (qemu-img info); sha256 = the reference's;
#     st_blocks = the allocated data (within a cluster and 511 bytes);
#   - reads at odd offsets and sizes (os.pread) equal the reference;
#   - SEEK_DATA/SEEK_HOLE: the data/hole runs walked with lseek equal
#     qcow2map.py's (allocated = data; unallocated and zero = hole; adjacent
#     runs merged; the implicit hole at EOF), and lseek from 200 random
#     offsets (plus at and past EOF) answers as those runs say;
#   - `qemu-img map -f raw --output=json VIEW` reports data exactly in those
#     runs and zero everywhere else;
#   - `cp --sparse=always VIEW` gives identical content (within 60 s even
#     for the 35 GiB view: cp must find the holes).
# Each image must actually show the states it was made for (data, zero,
# zero-alloc, unalloc), so that a qemu change cannot silently drop coverage.
# Finally odd-size (another template copy): the header size patched to 412
# bytes less than 8 MiB, not a multiple of 512 (qemu uses floor(size / 512)
# sectors): it must be rejected with a qcow2.* check, or served exactly as
# qemu serves it (8 MiB - 512 bytes).
set -u
. "$(dirname "$0")/lib.sh"
. "$GEN/qcow2.sh"

need_root_fuse
need_tool qemu-img qemu-io sha256sum cp cmp
need_prog "$SAFEIMGFS" "$SAFEIMG_INSPECT"
[ -x "$PYTHON" ] || skip "no $PYTHON"

STORE=$SCRATCH/store REF=$SCRATCH/ref KEYS=$SCRATCH/keys MNT=$SCRATCH/mnt
mkdir -p "$STORE" "$REF" "$KEYS" "$MNT"
chmod 700 "$KEYS"

S10=$((10485760 + 7680))    # 10 MiB + 7680: qemu rounds sizes to 512 bytes
TEMPLATE=$SCRATCH/template.qcow2
TPW=$SCRATCH/template.pw

ESSIV128=encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=sha256
ESSIV256=encrypt.cipher-alg=aes-256,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=sha256
declare -A CIPHER=([c4k-v3]="aes-cbc-essiv:sha256 128" [c2m-v3]="aes-cbc-essiv:sha256 256"
    [c16k-xl2]="aes-xts-plain64 256")   # the rest: aes-xts-plain64 512
# name | qemu-img create options ("template": a copy of $TEMPLATE) | virtual
# size | states the map must show
IMAGES=(
    "c4k-v3|cluster_size=4096,compat=1.1,$ESSIV128|$S10|data zero zero-alloc unalloc"
    "c2m-v3|cluster_size=2097152,compat=1.1,$ESSIV256|$S10|data zero unalloc"
    "c64k-v2|cluster_size=65536,compat=0.10|$((33554432 + 512))|data unalloc"
    "c512-v3|cluster_size=512,compat=1.1|4M|data zero unalloc"
    "c64k-xl2|cluster_size=65536,extended_l2=on|16M|data zero unalloc"
    "c16k-xl2|cluster_size=16384,extended_l2=on,encrypt.cipher-alg=aes-128|$((8388608 + 1536))|data zero unalloc"
    "c2m-xl2|cluster_size=2097152,extended_l2=on|$S10|data zero unalloc"
    "c64k-v3|template||data zero zero-alloc unalloc"
    "fromraw|template||data zero unalloc"
    "prealloc|template||data unalloc"
    "snapvm|template||data unalloc"
    "resized|template||data unalloc"
    "many-l2|template||data unalloc"
)
BIG=$((256 * 1048576))   # larger views are compared by data runs and probes

# make_image NAME OPTS SIZE PW: create and fill one image (run in the background).
make_image() {
    local n=$1 o=$2 size=$3 pw=$4 img="$STORE/$1"
    if [ "$o" = template ]; then
        cp "$TEMPLATE" "$img" || return 1
    else
        q2_create "$img" "$size" "$pw" "$o" || return 1
    fi
    case $n in
    c4k-v3)
        # L2 span = 2 MiB: data in spans 0, 1 (crossing 0/1), 2 and the last;
        # span 3 and 4 have no table.
        q2_write_random "$img" "$pw" 0 4k 20k 8k $((2097152 - 2048)) 4k 4M 12k \
            $((4194304 + 40960)) 1000 10489856 3584 &&
            q2_io "$img" "$pw" 'write -z 8k 8k' 'write -z 20k 4k' 'write -z 4M 4k' ;;
    c64k-v3)
        q2_resize "$img" "$pw" 64M &&
            q2_write_random "$img" "$pw" 0 4k 70000 5000 1M 64k $((5 * 1048576 + 32768)) 200k \
            $((63 * 1048576 + 61440)) 4k $((67108864 - 512)) 512 &&
            q2_io "$img" "$pw" 'write -z 2M 128k' 'write -z 1M 64k' 'write -z 5308416 64k' ;;
    c2m-v3)
        q2_write_random "$img" "$pw" 0 4k 5M 8k 10485760 7680 &&
            q2_io "$img" "$pw" 'write -z 2M 2M' ;;
    c64k-v2)
        q2_write_random "$img" "$pw" 0 4k 3M 200k 20M 1000 33554432 512 ;;
    c512-v3)
        q2_write_random "$img" "$pw" 0 4k 1M 1536 33280 700 $((4194304 - 512)) 512 &&
            q2_io "$img" "$pw" 'write -z 2M 64k' ;;
    c64k-xl2)
        # Subclusters of 2 KiB: odd ones in cluster 0, a 4 KiB write over
        # subclusters 9-10, a full cluster at 1 MiB with a zeroed subcluster.
        q2_write_random "$img" "$pw" 2k 2k 6k 2k 10k 2k 14k 2k 18k 4k 1M 64k \
            $((16777216 - 2048)) 2k &&
            q2_io "$img" "$pw" 'write -z 40k 2k' 'write -z 6k 2k' 'write -z 1052672 2k' 'write -z 3M 64k' ;;
    c16k-xl2)
        q2_write_random "$img" "$pw" 512 512 1536 1024 3000 100 100k 4k \
            $((8388608 + 1024)) 512 &&
            q2_io "$img" "$pw" 'write -z 16k 1k' 'write -z 100k 512' ;;
    c2m-xl2)
        q2_write_random "$img" "$pw" 64k 64k 130k 10k 10485760 7680 &&
            q2_io "$img" "$pw" 'write -z 4M 128k' 'write -z 64k 64k' ;;
    fromraw)
        # Random, zeros, random: convert leaves the zero stretch unallocated.
        head -c 1M /dev/urandom >"$REF/fromraw.src" &&
            head -c 3M /dev/zero >>"$REF/fromraw.src" &&
            head -c 524288 /dev/urandom >>"$REF/fromraw.src" &&
            qemu-img convert -n -f raw "$REF/fromraw.src" --object "secret,id=s,file=$pw,format=raw" \
                --target-image-opts "driver=qcow2,file.filename=$img,encrypt.key-secret=s" ;;
    prealloc)
        q2_write_random "$img" "$pw" 64k 4k &&
            q2_resize "$img" "$pw" 12M --preallocation=metadata ;;
    snapvm)
        q2_write_random "$img" "$pw" 0 128k 1M 64k 5M 4k $((8388608 - 4096)) 4096 &&
            q2_snapshot "$img" "$pw" s1 &&
            q2_write_random "$img" "$pw" 64k 64k 2M 64k 5M 1k &&
            q2_io "$img" "$pw" 'write -b -P 0x77 0 64k' 'write -b -P 0x78 1M 4k' ;;
    resized)
        q2_resize "$img" "$pw" 10M &&
            q2_write_random "$img" "$pw" 0 4k 4M 8k 9M 64k &&
            q2_resize "$img" "$pw" $((5242880 + 512)) --shrink &&
            q2_resize "$img" "$pw" $((20971520 + 512)) ;;
    many-l2)
        local args=() i
        for i in $(seq 0 69); do
            args+=($((i * 536870912 + (i % 5) * 65536 + 4096)) 8192)
        done
        q2_resize "$img" "$pw" 35G && q2_write_random "$img" "$pw" "${args[@]}" ;;
    odd-size)
        q2_write_random "$img" "$pw" 0 4k $((8388608 - 4096)) 4096 &&
            q2_patch "$img" header size 'entry - 412' ;;
    esac || return 1
    q2_ref "$img" "$pw" "$REF/$n.raw"
}

# The template first (its creation overlaps the other images' creation).
q2_secret "$TPW" "pw-template" || fail "cannot write key"
q2_bg template q2_create "$TEMPLATE" 8M "$TPW" cluster_size=65536
NAMES=()
declare -A WANT_STATES=()
for spec in "${IMAGES[@]}"; do
    IFS='|' read -r name opts size states <<<"$spec"
    NAMES+=("$name")
    WANT_STATES[$name]=$states
    [ "$opts" = template ] && continue
    q2_secret "$KEYS/$name.key" "pw-$name" || fail "cannot write key"
    q2_bg "$name" make_image "$name" "$opts" "$size" "$KEYS/$name.key"
done
q2_wait || fail "generators failed"
for spec in "${IMAGES[@]}" "odd-size|template||"; do
    IFS='|' read -r name opts size states <<<"$spec"
    [ "$opts" = template ] || continue
    cp "$TPW" "$KEYS/$name.key" && chmod 600 "$KEYS/$name.key" || fail "cannot write key"
    q2_bg "$name" make_image "$name" "$opts" "$size" "$KEYS/$name.key"
done
q2_wait || fail "generators failed"
note "generated $((${#NAMES[@]} + 1)) images"

# Generator checks: qcow2map.py agrees with qemu's own view of the allocation
# (qemu-img map of the encrypted image: data/zero flags, no offsets), and each
# image shows the states it was made for.
for n in "${NAMES[@]}"; do
    q2_map "$STORE/$n" --json >"$REF/$n.map.json" || fail "qcow2map.py failed on $n"
    qemu-img map -U --output=json --object "secret,id=s,file=$KEYS/$n.key,format=raw" --image-opts \
        "driver=qcow2,file.filename=$STORE/$n,encrypt.key-secret=s" >"$REF/$n.qmap.json" ||
        fail "qemu-img map of $n failed"
    out=$("$PYTHON" - "$REF/$n.map.json" "$REF/$n.qmap.json" "${WANT_STATES[$n]}" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
q = json.load(open(sys.argv[2]))
errs = []
def merged(items):
    out = []
    for s, e, k in items:
        if out and out[-1][2] == k and out[-1][1] == s:
            out[-1][1] = e
        else:
            out.append([s, e, k])
    return out
kind = {"data": "data", "zero": "zero", "zero-alloc": "zero", "unalloc": "unalloc"}
mine = merged([(s, e, kind.get(st, st)) for s, e, st, _ in m["pieces"]])
theirs = merged([(x["start"], x["start"] + x["length"],
                  "data" if x["data"] else ("zero" if x["present"] else "unalloc")) for x in q])
if mine != theirs:
    errs.append("qcow2map.py and qemu-img map disagree:\n  %s\n  %s" % (mine, theirs))
states = {st for _, _, st, _ in m["pieces"]}
for want in sys.argv[3].split():
    if want not in states:
        errs.append("no %s cluster/subcluster in the image (states: %s)" % (want, sorted(states)))
if m["problems"]:
    errs.append("qcow2map.py reports problems: %s" % m["problems"][:3])
print("\n".join(errs))
sys.exit(1 if errs else 0)
EOF
    ) || fail "generator check of $n: $out"
done
note "qcow2map.py agrees with qemu-img map; every image has its intended states"

mount_store "$STORE" "$MNT" "keydir=$KEYS"
wait_verdicts "$MNT" $((${#NAMES[@]} + 1))

for n in "${NAMES[@]}"; do
    qemu-img info -U --output=json "$STORE/$n" >"$REF/$n.info.json" || fail "qemu-img info $n failed"
    ins=$(timeout -k 5 60 "$SAFEIMG_INSPECT" --keydir "$KEYS" --json "$STORE/$n") ||
        fail "safeimg-inspect $n: exit $? ($ins)"
    out=$("$PYTHON" - "$n" "$MNT" "$REF" "$ins" "${CIPHER[$n]:-aes-xts-plain64 512}" <<'EOF'
import json, os, stat, sys
n, mnt, ref, ins, cipher = sys.argv[1:6]
errs = []
vsize = json.load(open("%s/%s.info.json" % (ref, n)))["virtual-size"]
if os.stat("%s/%s.raw" % (ref, n)).st_size != vsize:
    errs.append("reference size %d, virtual size %d" % (os.stat("%s/%s.raw" % (ref, n)).st_size, vsize))
want = ["accepted", "inner.raw", "qcow2+luks", "raw", vsize]
ims = {i["name"]: i for i in json.load(open(mnt + "/.safeimgfs/status.json"))["images"]}
im = ims.get(n, {})
got = [im.get(k) for k in ("state", "check", "outer_format", "inner_format", "size")]
if got != want:
    errs.append("status.json: state check outer_format inner_format size = %s, want %s (%s)" % (got, want, im.get("reason")))
try:
    d = json.loads(ins)
    e = d.get("encryption") or {}
    got = [d.get(k) for k in ("state", "check", "outer_format", "inner_format", "size")] + [e.get("cipher"), e.get("key_bits")]
    c, kb = cipher.split()
    if got != want + [c, int(kb)]:
        errs.append("safeimg-inspect --json: %s, want %s" % (got, want + [c, int(kb)]))
except ValueError:
    errs.append("safeimg-inspect --json printed no JSON: %r" % ins)
st = os.stat("%s/%s" % (mnt, n))
if not stat.S_ISREG(st.st_mode) or st.st_size != vsize:
    errs.append("view: mode 0%o size %d, want a regular file of %d bytes" % (st.st_mode, st.st_size, vsize))
# st_blocks: the allocated data (qcow2map.py's data runs), give or take the
# unused tail of a partial last cluster and rounding to 512.
m = json.load(open("%s/%s.map.json" % (ref, n)))
data = sum(e - s for k, s, e in m["runs"] if k == "data")
if not data <= st.st_blocks * 512 <= data + m["cluster_size"] + 511:
    errs.append("st_blocks %d (%d bytes) for %d bytes of allocated data (cluster size %d)"
                % (st.st_blocks, st.st_blocks * 512, data, m["cluster_size"]))
print("; ".join(errs))
sys.exit(1 if errs else 0)
EOF
    ) || fail "$n: $out"
    vsize=$(stat -c %s "$MNT/$n")
    [ "$vsize" -gt "$BIG" ] && continue
    if [ "$(sha256_of "$REF/$n.raw")" != "$(sha256_of "$MNT/$n")" ]; then
        fail "$n: the view's sha256 differs from qemu-img convert's plaintext: $(cmp "$REF/$n.raw" "$MNT/$n" 2>&1 | head -n 1)"
    fi
done
note "status, sizes, st_blocks and sha256 of all views match"

# compare_sparse A B MAP.json: A and B (sparse files of one size) agree on
# every data run of MAP and on 2000 random 4 KiB probes.
compare_sparse() {
    "$PYTHON" - "$@" <<'EOF'
import json, os, random, sys
a, b = (os.open(p, os.O_RDONLY) for p in sys.argv[1:3])
m = json.load(open(sys.argv[3]))
size = m["size"]
bad = []
def cmp(off, ln):
    x, y = os.pread(a, ln, off), os.pread(b, ln, off)
    if x != y and len(bad) < 5:
        bad.append("%d+%d" % (off, ln))
for kind, s, e in m["runs"]:
    if kind == "data":
        for off in range(s, e, 1 << 20):
            cmp(off, min(1 << 20, e - off))
rnd = random.Random(7)
for _ in range(2000):
    cmp(rnd.randrange(0, size), 4096)
if bad:
    print("differ at " + ", ".join(bad))
    sys.exit(1)
EOF
}

for n in "${NAMES[@]}"; do
    qemu-img map -f raw --output=json "$MNT/$n" >"$REF/$n.viewmap.json" 2>"$REF/$n.viewmap.err" ||
        fail "qemu-img map -f raw of the view $n failed: $(cat "$REF/$n.viewmap.err")"
    out=$("$PYTHON" - "$MNT/$n" "$REF/$n.raw" "$REF/$n.map.json" "$REF/$n.viewmap.json" "$BIG" <<'EOF'
import errno, json, os, random, sys
view, refp, mapp, qmapp = sys.argv[1:5]
rfd = os.open(refp, os.O_RDONLY)
size = os.fstat(rfd).st_size
big = size > int(sys.argv[5])
def refread(off, ln):
    return os.pread(rfd, ln, off) if off < size else b""
m = json.load(open(mapp))
errs = []
def err(msg):
    if len(errs) < 8:
        errs.append(msg)

# Expected data runs: qcow2map.py's runs (already merged, clipped to size).
want = [(s, e) for k, s, e in m["runs"] if k == "data"]

fd = os.open(view, os.O_RDONLY)
# 1. Odd reads.
M = 1 << 20
cases = [(0, 1), (511, 1), (511, 2), (4095, 4097), (3, M + 3), (size - 1, 1), (size - 100, 1000),
         (size - 7000, 7000), (size, 1), (size + 5, 10)]
if not big:
    cases += [(0, size + 4096), (1, size)]
for s, e in want[:20] + want[-20:]:
    cases += [(s, 1), (max(s - 1, 0), 2), (e - 1, 1), (max(e - 700, 0), 1400), (s + 513, 3000)]
    if big:
        cases += [(s, e - s)]
rnd = random.Random(size)
for _ in range(2000 if big else 300):
    cases.append((rnd.randrange(0, size + 4096),
                  rnd.choice([1, 7, 511, 512, 513, 4095, 4096, 4097, 65537, rnd.randrange(1, 300000)])))
for off, ln in cases:
    got, exp = os.pread(fd, ln, off), refread(off, ln)
    if got != exp:
        err("pread(%d, %d): %s" % (off, ln, "got %d bytes, want %d" % (len(got), len(exp))
                                   if len(got) != len(exp) else "contents differ"))

# 2. The data/hole runs walked with lseek.
def seek(off, whence):
    try:
        return os.lseek(fd, off, whence)
    except OSError as e:
        return errno.errorcode.get(e.errno, e.errno)
got, off = [], 0
while off < size:
    d = seek(off, os.SEEK_DATA)
    if d == "ENXIO":
        break
    if not isinstance(d, int) or d < off:
        err("SEEK_DATA from %d: %r" % (off, d))
        break
    h = seek(d, os.SEEK_HOLE)
    if not isinstance(h, int) or h <= d:
        err("SEEK_HOLE from %d: %r" % (d, h))
        break
    got.append((d, h))
    off = h
if got != want:
    err("lseek data runs %s\n    qcow2map.py data runs %s" % (got[:12], want[:12]))

# 3. lseek from arbitrary offsets.
def expect(off, whence):
    if off >= size:
        return "ENXIO"
    for s, e in want:
        if off < e:
            if whence == os.SEEK_DATA:
                return max(off, s)
            return off if off < s else e
    return "ENXIO" if whence == os.SEEK_DATA else off
probes = [0, size - 1, size, size + 1, size + (1 << 30)]
for s, e in want:
    probes += [s, e, max(s - 1, 0), e - 1]
probes += [rnd.randrange(0, size) for _ in range(200)]
for p in probes:
    for wh, nm in ((os.SEEK_DATA, "SEEK_DATA"), (os.SEEK_HOLE, "SEEK_HOLE")):
        r, x = seek(p, wh), expect(p, wh)
        if r != x:
            err("lseek(%d, %s) = %r, want %r" % (p, nm, r, x))
os.close(fd)

# 4. qemu-img map -f raw of the view: data exactly in the runs, zero elsewhere.
q = json.load(open(qmapp))
qd, pos = [], 0
for x in q:
    if x["start"] != pos:
        err("qemu-img map: gap at %d" % pos)
    pos = x["start"] + x["length"]
    if x["data"]:
        if qd and qd[-1][1] == x["start"]:
            qd[-1] = (qd[-1][0], pos)
        else:
            qd.append((x["start"], pos))
    elif not x["zero"]:
        err("qemu-img map: %d+%d is neither data nor zero" % (x["start"], x["length"]))
if pos != size:
    err("qemu-img map covers %d bytes, the view has %d" % (pos, size))
if qd != want:
    err("qemu-img map -f raw data %s\n    qcow2map.py data runs %s" % (qd[:12], want[:12]))
print("\n  ".join(errs))
sys.exit(1 if errs else 0)
EOF
    ) || fail "$n: $out"
    # cp looks for holes with SEEK_DATA only when st_blocks says the file is
    # sparse: a 35 GiB view copied by reading its holes would take minutes.
    rm -f "$SCRATCH/cp.out"
    timeout -k 5 60 cp --sparse=always "$MNT/$n" "$SCRATCH/cp.out" || fail "cp --sparse=always of $n failed or took over 60 s"
    if [ "$(stat -c %s "$REF/$n.raw")" -gt "$BIG" ]; then
        assert_eq "$(stat -c %s "$REF/$n.raw")" "$(stat -c %s "$SCRATCH/cp.out")" "$n: size of the cp --sparse=always copy"
        out=$(compare_sparse "$SCRATCH/cp.out" "$REF/$n.raw" "$REF/$n.map.json") ||
            fail "$n: cp --sparse=always copy differs: $out"
    else
        cmp -s "$SCRATCH/cp.out" "$REF/$n.raw" || fail "$n: cp --sparse=always copy differs: $(cmp "$SCRATCH/cp.out" "$REF/$n.raw" 2>&1 | head -n 1)"
    fi
done
rm -f "$SCRATCH/cp.out"
note "odd reads, lseek runs, qemu-img map and cp --sparse=always agree for all views"

# odd-size: rejected with a qcow2.* check, or exactly qemu's view.
q2_ref "$STORE/odd-size" "$KEYS/odd-size.key" "$REF/odd-size.raw" || fail "qemu cannot read odd-size"
st=$(status_field "$MNT" odd-size state) || fail "odd-size missing from status.json"
ck=$(status_field "$MNT" odd-size check)
if [ "$st" = rejected ]; then
    case $ck in qcow2.*) ;; *) fail "odd-size: rejected with $ck (want a qcow2.* check)" ;; esac
    note "odd-size: rejected ($ck)"
else
    assert_eq "accepted inner.raw" "$st $ck" "odd-size: state check"
    qsize=$(stat -c %s "$REF/odd-size.raw")
    vsize=$(stat -c %s "$MNT/odd-size")
    [ "$vsize" = "$qsize" ] ||
        fail "odd-size: header size $(q2_map "$STORE/odd-size" --header | sed -n 's/^size //p') (not a multiple of 512): the view has $vsize bytes, qemu's plaintext $qsize (qemu reads floor(size / 512) sectors)"
    cmp -s "$REF/odd-size.raw" "$MNT/odd-size" || fail "odd-size: the view differs from qemu's plaintext"
    note "odd-size: served as qemu serves it"
fi

umount_store "$MNT"
assert_eq 0 "$DAEMON_STATUS" "daemon exit status after fusermount3 -u"
echo "PASS: $TEST_NAME"
exit 0
