#!/usr/bin/env bash
# Read-throughput benchmark: safeimgfs against its peers, side by side, on
# the same images in the same run.  Prints MB/s and ratios to safeimgfs.
#
#   contrib/bench.sh [SIZE_MIB]      (default 1024; run as root on Debian 12)
#
# Peers (installed with apt-get when missing):
#   qemu-storage-daemon --export type=fuse   LUKS1 and qcow2+LUKS, one image per daemon
#   nbdkit --filter=luks + nbdfuse           LUKS1 only
#   qemu-img convert decrypting by itself    what OpenStack runs today
# Every read starts with a cold page cache (drop_caches); each figure is the
# median of 3 runs.  Blobs live on tmpfs so the disk does not dominate.
set -euo pipefail

size_mib=${1:-1024}
top=$(cd "$(dirname "$0")/.." && pwd)
fs=${SAFEIMGFS:-$top/build/safeimgfs}
[ -x "$fs" ] || { echo "bench: build safeimgfs first (tests/run.sh or make)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (drop_caches, FUSE)" >&2; exit 2; }
for p in qemu-utils qemu-system-common nbdkit libnbd-bin; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null
done

work=$(mktemp -d /dev/shm/sif-bench.XXXXXX)
pids=()
# stop_peer MOUNTPOINT [PIDFILE|PID]: unmount, then make sure the daemon is
# gone (qemu-storage-daemon keeps spinning a core after its export is
# unmounted, which would slow every later measurement).
stop_peer() {
    local m=$1 p=${2:-}
    fusermount3 -u "$m" 2>/dev/null || true
    [ -f "$p" ] && p=$(cat "$p")
    if [ -n "$p" ]; then
        kill "$p" 2>/dev/null || true
        for _ in $(seq 40); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.05; done
        kill -9 "$p" 2>/dev/null || true
    fi
}
cleanup() {
    for m in "$work"/m-*; do fusermount3 -u "$m" 2>/dev/null || true; done
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for f in "$work"/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

cd "$work"
printf pw > pw && chmod 600 pw
echo "bench: making a ${size_mib} MiB random payload and its encrypted images in $work"
head -c "$((size_mib << 20))" /dev/urandom > plain.raw
retry() { for _ in 1 2 3 4 5; do "$@" 2>/dev/null && return 0; done; "$@"; }
retry qemu-img convert -f raw -O luks --object secret,id=s,file=pw -o key-secret=s,iter-time=10 plain.raw l1.img
retry qemu-img convert -f raw -O qcow2 --object secret,id=s,file=pw \
    -o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 plain.raw q.qcow2
rm -f plain.raw
mkdir -p store keys
mv l1.img q.qcow2 store/
cp pw keys/l1.img.key; cp pw keys/q.qcow2.key; chmod 600 keys/*

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
wait_for() {  # wait_for CMD...: poll up to 30 s
    for _ in $(seq 600); do "$@" 2>/dev/null && return 0; sleep 0.05; done
    return 1
}
# mbps FILE: median MB/s of 3 cold sequential reads with 1 MiB requests
mbps() {
    local f=$1 runs=() t0 t1 bytes
    bytes=$(stat -c %s "$f")
    for _ in 1 2 3; do
        drop
        t0=$(date +%s%N)
        dd if="$f" of=/dev/null bs=1M status=none
        t1=$(date +%s%N)
        runs+=("$(( bytes * 1000 / (t1 - t0) ))")
    done
    printf '%s\n' "${runs[@]}" | sort -n | sed -n 2p
}

declare -A result
# safeimgfs: one mount serves both images
mkdir m-sif
"$fs" -f -o keydir="$work/keys" store m-sif 2>/dev/null &
pids+=($!)
wait_for test -e m-sif/.safeimgfs/status.json
wait_for test -e m-sif/q.qcow2
result[sif-luks1]=$(mbps m-sif/l1.img)
result[sif-qcow2]=$(mbps m-sif/q.qcow2)

# qemu-storage-daemon FUSE exports, one per image, one at a time
qsd() {  # qsd NAME DRIVER-OPTS
    touch "m-$1"
    qemu-storage-daemon --daemonize --pidfile "$1.pid" --object secret,id=s,file=pw \
        --blockdev driver=file,filename="store/$1",node-name=f0 \
        --blockdev "$2,file=f0,node-name=fmt" \
        --export type=fuse,id=e,node-name=fmt,mountpoint="m-$1",writable=off
}
qsd l1.img driver=luks,key-secret=s
result[qsd-luks1]=$(mbps m-l1.img)
stop_peer m-l1.img l1.img.pid
qsd q.qcow2 driver=qcow2,encrypt.format=luks,encrypt.key-secret=s
result[qsd-qcow2]=$(mbps m-q.qcow2)
stop_peer m-q.qcow2 q.qcow2.pid

# nbdkit's LUKS filter behind nbdfuse (LUKS1 only)
mkdir m-nbd
nbdfuse --readonly m-nbd/ --command nbdkit -s file store/l1.img --filter=luks passphrase=pw &
nbd_pid=$!
wait_for test -s m-nbd/nbd
result[nbd-luks1]=$(mbps m-nbd/nbd)
stop_peer m-nbd "$nbd_pid"

# qemu-img convert of the sparse-aware path: through the view vs by itself
ctime() {  # ctime CMD...: median seconds (ms) of 3 cold runs
    local runs=() t0 t1
    for _ in 1 2 3; do
        rm -f out.raw; drop
        t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N)
        runs+=("$(( (t1 - t0) / 1000000 ))")
    done
    printf '%s\n' "${runs[@]}" | sort -n | sed -n 2p
}
result[conv-sif]=$(ctime qemu-img convert -f raw -O raw m-sif/q.qcow2 out.raw)
result[conv-qemu]=$(ctime qemu-img convert -U --object secret,id=s,file=pw --image-opts \
    driver=qcow2,file.filename=store/q.qcow2,encrypt.format=luks,encrypt.key-secret=s -O raw out.raw)
rm -f out.raw
stop_peer m-sif "${pids[0]}"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
echo
echo "cold sequential read, ${size_mib} MiB, dd bs=1M, median of 3 (MB/s; ratio = safeimgfs / peer)"
printf '  %-34s %8s %8s\n' "" LUKS1 qcow2+LUKS
printf '  %-34s %8s %8s\n' "safeimgfs" "${result[sif-luks1]}" "${result[sif-qcow2]}"
printf '  %-34s %8s %8s   ratio %s / %s\n' "qemu-storage-daemon fuse export" "${result[qsd-luks1]}" "${result[qsd-qcow2]}" \
    "$(ratio "${result[sif-luks1]}" "${result[qsd-luks1]}")" "$(ratio "${result[sif-qcow2]}" "${result[qsd-qcow2]}")"
printf '  %-34s %8s %8s   ratio %s\n' "nbdkit luks filter + nbdfuse" "${result[nbd-luks1]}" "-" \
    "$(ratio "${result[sif-luks1]}" "${result[nbd-luks1]}")"
echo
echo "qemu-img convert -O raw of the qcow2+LUKS image (ms, median of 3)"
printf '  %-34s %8s\n' "through the safeimgfs view" "${result[conv-sif]}"
printf '  %-34s %8s   ratio %s\n' "qemu-img decrypting by itself" "${result[conv-qemu]}" \
    "$(ratio "${result[conv-qemu]}" "${result[conv-sif]}")"
echo "  (convert ratio = qemu-img alone / through safeimgfs: above 1 means the view is faster)"
