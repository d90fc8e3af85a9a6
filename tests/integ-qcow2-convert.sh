#!/bin/bash
# Integration test: qemu-img converting qcow2+LUKS views (what OpenStack does
# with an image), exactly and reading only the data.
#
# Store:
#   sparse1g   1 GiB virtual, 64 KiB clusters, 2 MiB of random data in 16
#              pieces of 128 KiB at scattered offsets (the last one ending at
#              the end of the disk) and 1 MiB of zero clusters
#   xl2        256 MiB virtual + 1536 bytes, 2 MiB clusters with extended L2
#              (64 KiB subclusters): data in some subclusters of a few
#              clusters, zero subclusters, the last partial cluster written
# The reference plaintext is `qemu-img convert -U ... -O raw` of the image
# (qemu decrypting by itself); the data size is the sum of qcow2map.py's
# data runs. For each view:
#   - `qemu-img convert -f raw -O raw VIEW out.raw` equals the reference (cmp);
#   - it reads only the data: the bytes qemu-img read (rchar of
#     /proc/self/io of a wrapper that waits for it, which includes the
#     reaped child's I/O) are at least the data size and at most the data
#     size + 8 MiB, not the virtual size (qemu-img skips holes with
#     SEEK_DATA/SEEK_HOLE through the FUSE lseek); the output's allocated
#     blocks are at most the data size + 1 MiB;
#   - `qemu-img convert -f raw -O qcow2 VIEW out.qcow2`, then
#     `qemu-img compare -f raw -F qcow2 ref.raw out.qcow2` succeeds, and
#     out.qcow2 reads about the data size as well.
#   - `cp --sparse=auto` of sparse1g gives an exact copy and reads only
#     about the data (cp needs st_blocks below st_size / 512 before it tries
#     SEEK_DATA: the view's st_blocks must count the allocated data only).
set -u
. "$(dirname "$0")/lib.sh"
. "$GEN/qcow2.sh"

need_root_fuse
need_tool qemu-img qemu-io cmp stat
need_prog "$SAFEIMGFS" "$SAFEIMG_INSPECT"
[ -x "$PYTHON" ] || skip "no $PYTHON"
[ -r /proc/self/io ] || skip "no /proc/self/io (task I/O accounting)"

STORE=$SCRATCH/store REF=$SCRATCH/ref KEYS=$SCRATCH/keys MNT=$SCRATCH/mnt OUT=$SCRATCH/out
mkdir -p "$STORE" "$REF" "$KEYS" "$MNT" "$OUT"
chmod 700 "$KEYS"
M=1048576

mk_sparse1g() {
    local img=$STORE/sparse1g pw=$KEYS/sparse1g.key args=() i
    q2_create "$img" 1G "$pw" cluster_size=65536 || return 1
    # 15 pieces spread over the disk plus one that ends at the end.
    for i in $(seq 0 14); do
        args+=($((i * 67 * M + i * 196608)) 131072)
    done
    args+=($((1024 * M - 131072)) 131072)
    q2_write_random "$img" "$pw" "${args[@]}" &&
        q2_io "$img" "$pw" 'write -z 300M 1M' &&
        q2_ref "$img" "$pw" "$REF/sparse1g.raw"
}
mk_xl2() {
    local img=$STORE/xl2 pw=$KEYS/xl2.key
    q2_create "$img" $((256 * M + 1536)) "$pw" cluster_size=2097152,extended_l2=on &&
        q2_write_random "$img" "$pw" 64k 64k 200k 100k $((10 * M)) 1M $((100 * M + 65536)) 4k \
            $((256 * M)) 1536 &&
        q2_io "$img" "$pw" 'write -z 30M 2M' 'write -z 10M 64k' &&
        q2_ref "$img" "$pw" "$REF/xl2.raw"
}
NAMES=(sparse1g xl2)
for n in "${NAMES[@]}"; do
    q2_secret "$KEYS/$n.key" "convert-$n" || fail "cannot write key"
    q2_bg "$n" "mk_$n"
done
q2_wait || fail "generators failed"

declare -A DATA=()
for n in "${NAMES[@]}"; do
    DATA[$n]=$(q2_map "$STORE/$n" --runs | awk '$1 == "data" { s += $3 - $2 } END { print s + 0 }') ||
        fail "qcow2map.py failed on $n"
    [ "${DATA[$n]}" -gt 0 ] || fail "$n: no data in the image"
done
assert_eq $((2 * M)) "${DATA[sparse1g]}" "sparse1g: data bytes per qcow2map.py"
note "generated: sparse1g ${DATA[sparse1g]} data bytes, xl2 ${DATA[xl2]} data bytes"

# read_bytes CMD...: run CMD, print "EXIT RCHAR" (bytes the command and its
# children read, from this wrapper's /proc/self/io after reaping them).
read_bytes() {
    "$PYTHON" - "$@" <<'EOF'
import subprocess, sys
def rchar():
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
before = rchar()
rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
print(rc, rchar() - before)
EOF
}

mount_store "$STORE" "$MNT" "keydir=$KEYS"
wait_verdicts "$MNT" "${#NAMES[@]}"
for n in "${NAMES[@]}"; do
    assert_eq accepted "$(status_field "$MNT" "$n" state)" "$n state"
    assert_eq "$(stat -c %s "$REF/$n.raw")" "$(stat -c %s "$MNT/$n")" "$n: view size"
done

for n in "${NAMES[@]}"; do
    data=${DATA[$n]} vsize=$(stat -c %s "$REF/$n.raw")
    read -r rc rd < <(read_bytes qemu-img convert -f raw -O raw "$MNT/$n" "$OUT/$n.raw")
    assert_eq 0 "$rc" "$n: qemu-img convert -O raw exit status"
    cmp "$REF/$n.raw" "$OUT/$n.raw" >"$SCRATCH/cmp.out" 2>&1 ||
        fail "$n: qemu-img convert of the view differs from the reference: $(head -n 1 "$SCRATCH/cmp.out")"
    alloc=$(($(stat -c '%b * %B' "$OUT/$n.raw")))
    note "$n: convert -O raw read $rd bytes (data $data, virtual $vsize), output allocates $alloc bytes"
    [ "$rd" -ge "$data" ] || fail "$n: qemu-img read only $rd bytes, less than the $data data bytes (accounting broken?)"
    [ "$rd" -le $((data + 8 * M)) ] ||
        fail "$n: qemu-img convert read $rd bytes of the view for $data bytes of data (virtual size $vsize): holes are not skipped"
    [ "$alloc" -le $((data + M)) ] || fail "$n: the converted file allocates $alloc bytes for $data bytes of data"

    read -r rc rd < <(read_bytes qemu-img convert -f raw -O qcow2 "$MNT/$n" "$OUT/$n.qcow2")
    assert_eq 0 "$rc" "$n: qemu-img convert -O qcow2 exit status"
    [ "$rd" -le $((data + 8 * M)) ] ||
        fail "$n: qemu-img convert -O qcow2 read $rd bytes of the view for $data bytes of data"
    qemu-img compare -f raw -F qcow2 "$REF/$n.raw" "$OUT/$n.qcow2" >"$SCRATCH/compare.out" 2>&1 ||
        fail "$n: qemu-img compare of the reference and the converted qcow2 failed: $(cat "$SCRATCH/compare.out")"
    rm -f "$OUT/$n.raw" "$OUT/$n.qcow2"
done
note "converted views are exact and only the data was read"

# cp and tar ask SEEK_DATA only of files whose st_blocks is below
# st_size / 512: a view that reports every block allocated is copied by
# reading its holes.
n=sparse1g
blocks=$(stat -c %b "$MNT/$n")
read -r rc rd < <(read_bytes cp --sparse=auto "$MNT/$n" "$OUT/$n.cp")
assert_eq 0 "$rc" "$n: cp --sparse=auto exit status"
cmp -s "$REF/$n.raw" "$OUT/$n.cp" || fail "$n: cp --sparse=auto copy differs from the reference"
rm -f "$OUT/$n.cp"
note "$n: st_blocks $blocks ($((blocks * 512)) bytes for ${DATA[$n]} data bytes); cp --sparse=auto read $rd bytes"
[ "$rd" -le $((DATA[$n] + 8 * M)) ] ||
    fail "$n: cp --sparse=auto read $rd bytes of the view for ${DATA[$n]} data bytes (st_blocks $blocks: $((blocks * 512)) bytes)"

umount_store "$MNT"
assert_eq 0 "$DAEMON_STATUS" "daemon exit status after fusermount3 -u"
echo "PASS: $TEST_NAME"
exit 0
