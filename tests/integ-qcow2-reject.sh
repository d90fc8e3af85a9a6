#!/bin/bash
# Integration test: qcow2 images that inspection must reject, with the check
# id that decides each one (status.json and safeimg-inspect --json).
#
# Made with qemu-img / qemu-io (tests/gen/qcow2.sh):
#   backing.qcow2        qcow2+LUKS with a backing file (-b base -F qcow2) -> qcow2.backing
#   datafile.qcow2       qcow2+LUKS with an external data file (-o data_file) -> qcow2.data_file
#   compressed.qcow2     qcow2+LUKS with a cluster written by `qemu-io write -c`
#                        (stored as plaintext deflate)                    -> qcow2.compressed
#   aes.qcow2            encrypt.format=aes (legacy; patched from a LUKS
#                        image if qemu-img refuses to make it)            -> qcow2.aes
#   plain.qcow2          an unencrypted qcow2                             -> qcow2.unencrypted
#   cbc-plain64.qcow2    encrypt.cipher-mode=cbc, ivgen-alg=plain64 (LUKS
#                        cipher outside the allow-list)                   -> luks.cipher
#   xts-plain.qcow2      encrypt.ivgen-alg=plain (32-bit IVs)            -> luks.cipher
#   twofish.qcow2        encrypt.cipher-alg=twofish-256                  -> luks.cipher
#   inner-backing.qcow2  qcow2+LUKS whose plaintext is a qcow2 with backing
#                        file /etc/hostname                               -> inner.qcow2
#   wrongkey.qcow2       the key file holds another passphrase           -> key.wrong
# Patched copies of one good image (tests/gen/qcow2patch.py):
#   corrupt.qcow2        incompatible bit 1 (corrupt)                    -> qcow2.corrupt
#   feature20.qcow2      unknown incompatible bit 20                     -> qcow2.feature
#   l1-reserved.qcow2    L1 entry with reserved bit 0                    -> qcow2.l1
#   l2-reserved.qcow2    L2 entry with reserved bit 57                   -> qcow2.l2
#   l2-misaligned.qcow2  L2 entry pointing 512 bytes into a cluster      -> qcow2.l2
#   l2-past-eof.qcow2    L2 entry pointing 16 clusters past the file end -> qcow2.l2
#   l2-into-l1.qcow2     L2 entry pointing at the L1 table               -> qcow2.overlap
#   l2-into-crypt.qcow2  L2 entry pointing into the LUKS header region   -> qcow2.overlap
#   l2-into-l2.qcow2     L2 entry pointing at its own L2 table           -> qcow2.overlap
#   l1-onto-l1.qcow2     L1 entry placing the L2 table on the L1 table   -> qcow2.overlap
#   l1-onto-crypt.qcow2  L1 entry placing the L2 table on the LUKS header -> qcow2.overlap
#   cbits22.qcow2        cluster_bits 22                                 -> qcow2.header
#   version4.qcow2       version 4                                       -> qcow2.version
#   no-fde.qcow2         FDE header extension removed, crypt_method 2    -> qcow2.crypt_header
#   luks-v2.qcow2        the embedded LUKS header's version set to 2     -> qcow2.crypt_header
#   slot-2e9.qcow2       embedded LUKS1 key slot 0: 2e9 PBKDF2 iterations -> luks.pbkdf
#   digest-2e9.qcow2     embedded LUKS1 MK digest: 2e9 iterations        -> luks.pbkdf
#   l1-table-on-crypt.qcow2  the L1 table placed on the LUKS header      -> qcow2.overlap
#   fde-misaligned.qcow2 FDE pointer 512 bytes off its cluster           -> qcow2.crypt_header
#   fde-past-eof.qcow2   FDE pointer past the end of the file            -> qcow2.crypt_header
#   size-huge.qcow2      virtual size 2^60 (an L1 table far beyond 32 MiB) -> qcow2.size
# Patched copies of an extended-L2 image (64 KiB clusters, 2 KiB subclusters):
#   xl2-alloc-zero.qcow2 a subcluster both allocated and zero            -> qcow2.l2
#   xl2-nohost.qcow2     allocated subclusters without a host cluster    -> qcow2.l2
#   xl2-zero-bit.qcow2   bit 0 of the first word (reserved with extended L2) -> qcow2.l2
#   xl2-past-eof.qcow2   allocated subclusters past the end of the file  -> qcow2.l2
# Controls that must be accepted, with views equal to qemu's plaintext:
#   good.qcow2 and xl2good.qcow2 (the unpatched images), dirty.qcow2
#   (incompatible bit 0, which is harmless read-only), l1-null-copied.qcow2 (L1 entry = copied flag with
#   offset 0: unallocated for qemu too; an L2 table can never be placed on the
#   header cluster, offset 0 means "no table").
# Checks: state, check id and a reason in status.json and from
# safeimg-inspect --json (exit 1 for the rejected, 0 for the controls);
# outer_format starts with qcow2; ENOENT on stat and open of every rejected
# view; the PBKDF-cost images are rejected within 5 s of starting the mount
# and by safeimg-inspect within 5 s each.
set -u
. "$(dirname "$0")/lib.sh"
. "$GEN/qcow2.sh"

need_root_fuse
need_tool qemu-img qemu-io sha256sum timeout
need_prog "$SAFEIMGFS" "$SAFEIMG_INSPECT"
[ -x "$PYTHON" ] || skip "no $PYTHON"

STORE=$SCRATCH/store KEYS=$SCRATCH/keys MNT=$SCRATCH/mnt W=$SCRATCH/work REF=$SCRATCH/ref
mkdir -p "$STORE" "$KEYS" "$MNT" "$W" "$REF"
chmod 700 "$KEYS"
PW=$W/pw
q2_secret "$PW" "qcow2-reject-pass" || fail "cannot write the passphrase"

mk_good() {
    q2_create "$W/good.qcow2" 4M "$PW" cluster_size=65536 &&
        q2_write_random "$W/good.qcow2" "$PW" 0 64k 128k 64k 1M 4k &&
        q2_ref "$W/good.qcow2" "$PW" "$REF/good.raw"
}
mk_xl2() {
    q2_create "$W/xl2good.qcow2" 4M "$PW" cluster_size=65536,extended_l2=on &&
        q2_write_random "$W/xl2good.qcow2" "$PW" 0 8k 128k 64k &&
        q2_ref "$W/xl2good.qcow2" "$PW" "$REF/xl2good.raw"
}
mk_backing() {
    q2_create_plain "$W/base.qcow2" 4M &&
        q2_create "$STORE/backing.qcow2" 4M "$PW" "backing_file=$W/base.qcow2,backing_fmt=qcow2"
}
mk_datafile() {
    # An absolute scratch path: never let qemu-img create write a real host file.
    q2_create "$STORE/datafile.qcow2" 4M "$PW" "data_file=$W/datafile.data"
}
mk_compressed() {
    q2_create "$STORE/compressed.qcow2" 4M "$PW" cluster_size=65536 &&
        q2_io "$STORE/compressed.qcow2" "$PW" 'write -P 0x5a 0 64k' 'write -c -P 0xa5 64k 64k'
}
mk_aes() {
    local img="$STORE/aes.qcow2"
    if qemu-img create -q -f qcow2 --object "secret,id=s,file=$PW,format=raw" \
        -o encrypt.format=aes,encrypt.key-secret=s "$img" 4M 2>/dev/null; then
        return 0
    fi
    # qemu-img refuses legacy AES: make a LUKS one and turn it into AES the
    # way an old image looks (crypt_method 1, no FDE header extension).
    q2_create "$img" 4M "$PW" && q2_patch "$img" header crypt_method 1 && q2_patch "$img" ext-del fde
}
mk_inner() {
    qemu-img create -q -f qcow2 -b /etc/hostname -F raw "$W/inner.qcow2" 1M &&
        q2_from_raw "$W/inner.qcow2" "$STORE/inner-backing.qcow2" "$PW"
}

[ -r /etc/hostname ] || skip "no /etc/hostname for the inner backing file"
q2_bg good mk_good
q2_bg xl2 mk_xl2
q2_bg backing mk_backing
q2_bg datafile mk_datafile
q2_bg compressed mk_compressed
q2_bg aes mk_aes
q2_bg inner mk_inner
q2_bg plain q2_create_plain "$STORE/plain.qcow2" 4M
q2_bg cbc-plain64 q2_create "$STORE/cbc-plain64.qcow2" 4M "$PW" encrypt.cipher-mode=cbc,encrypt.ivgen-alg=plain64
q2_bg xts-plain q2_create "$STORE/xts-plain.qcow2" 4M "$PW" encrypt.ivgen-alg=plain
q2_bg twofish q2_create "$STORE/twofish.qcow2" 4M "$PW" encrypt.cipher-alg=twofish-256
q2_wait || fail "generators failed"

G=$W/good.qcow2
# The layout the patches rely on: 64 KiB clusters, guest clusters 0 and 2
# allocated, one L2 table.
"$PYTHON" - "$GEN" "$G" <<'EOF' || fail "good.qcow2 does not have the expected layout"
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
import qcow2map
with open(sys.argv[2], "rb") as f:
    h = qcow2map.parse_header(f)
    recs = qcow2map.walk(f, h)
assert h["cluster_size"] == 65536 and h["crypt_method"] == 2 and h["version"] == 3, h
assert recs[0]["subs"] == ["data"] and recs[2]["subs"] == ["data"] and recs[1]["subs"] == ["unalloc"]
assert recs[0]["l2_table"] and h["crypt_length"] > 65536
EOF
"$PYTHON" - "$GEN" "$W/xl2good.qcow2" <<'EOF' || fail "xl2good.qcow2 does not have the expected layout"
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
import qcow2map
with open(sys.argv[2], "rb") as f:
    h = qcow2map.parse_header(f)
    r = qcow2map.cluster_record(f, h, 0)
assert h["extended_l2"] and h["subcluster_size"] == 2048, h
assert r["subs"][:4] == ["data"] * 4 and r["subs"][4:] == ["unalloc"] * 28, r["subs"]
EOF

# patched NAME OPERATION ARGS...: a copy of good.qcow2 with one patch.
patched() {
    local n=$1
    shift
    cp "$G" "$STORE/$n" && q2_patch "$STORE/$n" "$@" || fail "patching $n ($*) failed"
}
patched corrupt.qcow2 incompat-set 1
patched feature20.qcow2 incompat-set 20
patched dirty.qcow2 incompat-set 0
patched l1-reserved.qcow2 l1 0 'entry | 1'
patched l2-reserved.qcow2 l2 0 'entry | (1 << 57)'
patched l2-misaligned.qcow2 l2 0 'entry + 512'
patched l2-past-eof.qcow2 l2 0 '(1 << 63) | ((file_size + cluster_size - 1) // cluster_size + 16) * cluster_size'
patched l2-into-l1.qcow2 l2 0 '(1 << 63) | l1_offset'
patched l2-into-crypt.qcow2 l2 0 '(1 << 63) | (crypt_offset + cluster_size)'
patched l2-into-l2.qcow2 l2 0 '(1 << 63) | l2'
patched l1-onto-l1.qcow2 l1 0 '(1 << 63) | l1_offset'
patched l1-onto-crypt.qcow2 l1 0 '(1 << 63) | crypt_offset'
patched l1-null-copied.qcow2 l1 0 '1 << 63'
patched cbits22.qcow2 header cluster_bits 22
patched version4.qcow2 header version 4
patched no-fde.qcow2 ext-del fde
patched luks-v2.qcow2 luks-u16 6 2
patched slot-2e9.qcow2 luks-u32 '208 + 4' 2000000000
patched digest-2e9.qcow2 luks-u32 164 2000000000
patched l1-table-on-crypt.qcow2 header l1_table_offset crypt_offset
patched fde-misaligned.qcow2 ext-u64 fde 0 'entry + 512'
patched fde-past-eof.qcow2 ext-u64 fde 0 '(file_size + cluster_size - 1) // cluster_size * cluster_size + cluster_size'
patched size-huge.qcow2 header size '1 << 60'
# xl2patched NAME OPERATION ARGS...: a copy of xl2good.qcow2 with one patch.
xl2patched() {
    local n=$1
    shift
    cp "$W/xl2good.qcow2" "$STORE/$n" && q2_patch "$STORE/$n" "$@" || fail "patching $n ($*) failed"
}
xl2patched xl2-alloc-zero.qcow2 l2-bitmap 0 'entry | (1 << 33)'
xl2patched xl2-nohost.qcow2 l2 0 '0'
xl2patched xl2-zero-bit.qcow2 l2 0 'entry | 1'
xl2patched xl2-past-eof.qcow2 l2 0 '(1 << 63) | ((file_size + cluster_size - 1) // cluster_size + 16) * cluster_size'
cp "$W/xl2good.qcow2" "$STORE/xl2good.qcow2"
cp "$G" "$STORE/good.qcow2"
cp "$G" "$STORE/wrongkey.qcow2"

# What the patches did, seen through qcow2map.py and qemu.
hdr() { q2_map "$STORE/$1" --header | sed -n "s/^$2 //p"; }
assert_eq 2 "$(hdr no-fde.qcow2 crypt_method)" "no-fde.qcow2: crypt_method"
[ -z "$(hdr no-fde.qcow2 crypt_offset)" ] || fail "no-fde.qcow2 still has an FDE extension"
assert_eq 1 "$(hdr aes.qcow2 crypt_method)" "aes.qcow2: crypt_method"
assert_eq 0 "$(hdr plain.qcow2 crypt_method)" "plain.qcow2: crypt_method"
assert_eq 2 "$(hdr corrupt.qcow2 incompatible_features)" "corrupt.qcow2: incompatible features"
assert_eq $((1 << 20)) "$(hdr feature20.qcow2 incompatible_features)" "feature20.qcow2: incompatible features"
assert_eq 4 "$(hdr version4.qcow2 version)" "version4.qcow2: version"
assert_eq 22 "$(hdr cbits22.qcow2 cluster_bits)" "cbits22.qcow2: cluster_bits"
assert_eq True "$(hdr datafile.qcow2 external_data_file)" "datafile.qcow2: data file bit"
[ "$(hdr backing.qcow2 backing_file_offset)" != 0 ] || fail "backing.qcow2 has no backing file"
cmap=$(q2_map "$STORE/compressed.qcow2") && grep -q ' compressed ' <<<"$cmap" || fail "compressed.qcow2 has no compressed cluster"
"$PYTHON" -c 'import sys; b=open(sys.argv[1],"rb").read(4); sys.exit(b != b"QFI\xfb")' "$W/inner.qcow2" ||
    fail "inner.qcow2 is not a qcow2"
qemu-img info -U "$W/inner.qcow2" | grep -q '^backing file: /etc/hostname' || fail "inner.qcow2 has no backing file"
q2_ref "$STORE/l1-null-copied.qcow2" "$PW" "$REF/l1-null-copied.raw" || fail "qemu cannot read l1-null-copied.qcow2"
q2_ref "$STORE/dirty.qcow2" "$PW" "$REF/dirty.raw" || fail "qemu cannot read dirty.qcow2"
cmp -s "$REF/dirty.raw" "$REF/good.raw" || fail "dirty.qcow2 reads differently from good.qcow2 in qemu"

declare -A WANT=(
    [backing.qcow2]=qcow2.backing
    [datafile.qcow2]=qcow2.data_file
    [compressed.qcow2]=qcow2.compressed
    [aes.qcow2]=qcow2.aes
    [plain.qcow2]=qcow2.unencrypted
    [cbc-plain64.qcow2]=luks.cipher
    [xts-plain.qcow2]=luks.cipher
    [twofish.qcow2]=luks.cipher
    [inner-backing.qcow2]=inner.qcow2
    [wrongkey.qcow2]=key.wrong
    [corrupt.qcow2]=qcow2.corrupt
    [feature20.qcow2]=qcow2.feature
    [l1-reserved.qcow2]=qcow2.l1
    [l2-reserved.qcow2]=qcow2.l2
    [l2-misaligned.qcow2]=qcow2.l2
    [l2-past-eof.qcow2]=qcow2.l2
    [l2-into-l1.qcow2]=qcow2.overlap
    [l2-into-crypt.qcow2]=qcow2.overlap
    [l2-into-l2.qcow2]=qcow2.overlap
    [l1-onto-l1.qcow2]=qcow2.overlap
    [l1-onto-crypt.qcow2]=qcow2.overlap
    [cbits22.qcow2]=qcow2.header
    [version4.qcow2]=qcow2.version
    [no-fde.qcow2]=qcow2.crypt_header
    [luks-v2.qcow2]=qcow2.crypt_header
    [slot-2e9.qcow2]=luks.pbkdf
    [digest-2e9.qcow2]=luks.pbkdf
    [l1-table-on-crypt.qcow2]=qcow2.overlap
    [fde-misaligned.qcow2]=qcow2.crypt_header
    [fde-past-eof.qcow2]=qcow2.crypt_header
    [size-huge.qcow2]=qcow2.size
    [xl2-alloc-zero.qcow2]=qcow2.l2
    [xl2-nohost.qcow2]=qcow2.l2
    [xl2-zero-bit.qcow2]=qcow2.l2
    [xl2-past-eof.qcow2]=qcow2.l2
    [xl2good.qcow2]=inner.raw
    [good.qcow2]=inner.raw
    [dirty.qcow2]=inner.raw
    [l1-null-copied.qcow2]=inner.raw
)
for n in "${!WANT[@]}"; do
    [ -f "$STORE/$n" ] || fail "image $n was not made"
    q2_secret "$KEYS/$n.key" "qcow2-reject-pass" || fail "cannot write key"
done
q2_secret "$KEYS/wrongkey.qcow2.key" "not-the-passphrase"
PBKDF=(slot-2e9.qcow2 digest-2e9.qcow2)
note "made ${#WANT[@]} images"

pbkdf_decided() {
    local n
    for n in "${PBKDF[@]}"; do
        [ "$(status_field "$MNT" "$n" state 2>/dev/null)" = rejected ] || return 1
    done
}

t0=$(_now_us)
mount_store "$STORE" "$MNT" "keydir=$KEYS"
for n in "${PBKDF[@]}"; do
    assert_eq ENOENT "$(errno_of 'os.stat(a[0])' "$MNT/$n")" "stat of $n"
done
poll_until 5 pbkdf_decided || true
ms=$(elapsed_ms "$t0")
pbkdf_decided || { status_json "$MNT" >&2; fail "PBKDF-cost images not rejected ${ms} ms after mount (limit 5000 ms)"; }
[ "$ms" -le 5000 ] || fail "PBKDF-cost images rejected only after ${ms} ms (limit 5000 ms)"
note "PBKDF-cost images rejected ${ms} ms after starting the mount"
wait_verdicts "$MNT" "${#WANT[@]}"
cp "$MNT/.safeimgfs/status.json" "$SCRATCH/status.json"

# safeimg-inspect, one image at a time (bounded; the PBKDF ones within 5 s).
: >"$SCRATCH/inspect.jsonl"
for n in "${!WANT[@]}"; do
    t=$(_now_us)
    out=$(timeout -k 5 60 "$SAFEIMG_INSPECT" --keydir "$KEYS" --json "$STORE/$n" 2>"$SCRATCH/inspect.err")
    rc=$?
    ms=$(elapsed_ms "$t")
    want_rc=1
    [ "${WANT[$n]}" = inner.raw ] && want_rc=0
    [ "$rc" = "$want_rc" ] || fail "safeimg-inspect $n: exit $rc (want $want_rc): $out $(cat "$SCRATCH/inspect.err")"
    case " ${PBKDF[*]} " in
    *" $n "*) [ "$ms" -le 5000 ] || fail "safeimg-inspect took ${ms} ms on $n (limit 5000 ms)" ;;
    esac
    printf '%s\n' "$out" >>"$SCRATCH/inspect.jsonl"
done

wants=()
for n in "${!WANT[@]}"; do wants+=("$n=${WANT[$n]}"); done
errors=$("$PYTHON" - "$MNT" "$SCRATCH/status.json" "$SCRATCH/inspect.jsonl" "${wants[@]}" <<'EOF'
import errno, json, os, sys
mnt, stp, insp = sys.argv[1:4]
errs = []
mount = {i["name"]: i for i in json.load(open(stp))["images"]}
inspect = {}
for line in open(insp):
    if line.strip():
        d = json.loads(line)
        inspect[d["name"]] = d
for spec in sys.argv[4:]:
    name, want = spec.split("=", 1)
    want_state = "accepted" if want == "inner.raw" else "rejected"
    for src, ims in (("status.json", mount), ("safeimg-inspect", inspect)):
        im = ims.get(name)
        if im is None:
            errs.append("%s: missing from %s" % (name, src))
            continue
        if (im.get("state"), im.get("check")) != (want_state, want):
            errs.append("%s: %s says %s/%s (want %s/%s): %s" % (name, src, im.get("state"), im.get("check"),
                                                              want_state, want, im.get("reason")))
        if not im.get("reason"):
            errs.append("%s: %s gives no reason" % (name, src))
        if not str(im.get("outer_format")).startswith("qcow2"):
            errs.append("%s: %s outer_format %r" % (name, src, im.get("outer_format")))
    if want in ("luks.pbkdf", "luks.cipher", "key.wrong", "inner.qcow2", "inner.raw") and \
            mount.get(name, {}).get("outer_format") != "qcow2+luks":
        errs.append("%s: outer_format %r (want qcow2+luks)" % (name, mount.get(name, {}).get("outer_format")))
    if want == "inner.qcow2" and mount.get(name, {}).get("inner_format") != "qcow2":
        errs.append("%s: inner_format %r (want qcow2)" % (name, mount.get(name, {}).get("inner_format")))
    if want_state == "rejected":
        for what, fn in (("stat", os.stat), ("open", lambda p: open(p, "rb"))):
            try:
                fn(os.path.join(mnt, name))
                errs.append("%s: %s of the view succeeded (want ENOENT)" % (name, what))
            except OSError as e:
                if e.errno != errno.ENOENT:
                    errs.append("%s: %s gives %s (want ENOENT)" % (name, what, errno.errorcode.get(e.errno)))
print("\n  ".join(errs))
EOF
) || fail "checking the verdicts failed"
[ -z "$errors" ] || fail "wrong verdicts:
  $errors"

# The controls serve qemu's plaintext.
assert_eq "$(sha256_of "$REF/good.raw")" "$(sha256_of "$MNT/good.qcow2")" "good.qcow2 sha256"
assert_eq "$(sha256_of "$REF/good.raw")" "$(sha256_of "$MNT/dirty.qcow2")" "dirty.qcow2 sha256"
assert_eq "$(sha256_of "$REF/l1-null-copied.raw")" "$(sha256_of "$MNT/l1-null-copied.qcow2")" "l1-null-copied.qcow2 sha256"
assert_eq "$(sha256_of "$REF/xl2good.raw")" "$(sha256_of "$MNT/xl2good.qcow2")" "xl2good.qcow2 sha256"
listed=$("$PYTHON" -c 'import os,sys; print(" ".join(sorted(n for n in os.listdir(sys.argv[1]) if n != ".safeimgfs")))' "$MNT")
assert_eq "dirty.qcow2 good.qcow2 l1-null-copied.qcow2 xl2good.qcow2" "$listed" "readdir"

umount_store "$MNT"
assert_eq 0 "$DAEMON_STATUS" "daemon exit status after fusermount3 -u"
echo "PASS: $TEST_NAME"
exit 0
