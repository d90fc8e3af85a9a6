#!/usr/bin/env bash
# fuzz/make-corpus.sh: regenerates the seed corpus in fuzz/corpus/ with the
# real tools (qemu-img, qemu-io, cryptsetup, genisoimage, sgdisk, sfdisk).
# The seeds are committed, so CI needs none of these tools to fuzz; run
# this only to refresh them (salts and UUIDs differ on every run).
#
# Images are cut to the bytes the parsers read, keeping the corpus small:
#   probe/  content as a view serves it.  Seeds named *.ends hold the first
#           L and the last L bytes of an image, with the first 8 bytes set
#           (little-endian) to the 512-byte sectors left out: fuzz_probe
#           rebuilds that image's exact geometry from them (see its header).
#   luks/   LUKS1 headers (the 592-byte phdr, in 1 KiB), LUKS2 headers (both
#           16 KiB copies, 32 KiB), and LUKS2 JSON areas alone (*.json, which
#           fuzz_luks wraps in a header with valid checksums).
#   qcow2/  encrypted (and refused) qcow2 headers; fuzz_qcow2 pads them to
#           a file that holds the tables they name.
# Only these three directories are replaced; the other seeds (declared/,
# policy/) are made by hand and left as they are.
# Every passphrase here is a throwaway.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=fuzz-throwaway-passphrase
secret=(--object "secret,id=sec0,data=$pass")
luks_opts=encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10

for t in qemu-img qemu-io cryptsetup genisoimage sgdisk sfdisk python3; do
    command -v "$t" >/dev/null || { echo "make-corpus: $t is needed (contrib/install-deps-debian.sh)" >&2; exit 1; }
done
rm -rf "$out/probe" "$out/luks" "$out/qcow2"
mkdir -p "$out/probe" "$out/luks" "$out/qcow2"

# head FILE BYTES DEST: the first BYTES bytes of FILE.
head_of() { head -c "$2" "$1" > "$3"; }

# ends FILE L DEST: first L + last L bytes, first 8 bytes = sectors left out.
ends() {
    python3 - "$1" "$2" "$3" <<'EOF'
import struct, sys
path, l, dest = sys.argv[1], int(sys.argv[2]), sys.argv[3]
d = open(path, 'rb').read()
assert len(d) > 2 * l and (len(d) - 2 * l) % 512 == 0, (len(d), l)
seed = bytearray(d[:l] + d[-l:])
assert seed[:8] == bytes(8), "the first 8 bytes must be free (zero) in " + path
seed[:8] = struct.pack('<Q', (len(d) - 2 * l) // 512)
open(dest, 'wb').write(seed)
EOF
}

# qemu calibrates PBKDF2 against CPU time, and with iter-time=10 it now and
# then measures nothing and gives up ("Unable to get accurate CPU usage").
q() {
    local _
    for _ in 1 2 3 4 5; do
        qemu-img create -q "$@" 2>"$tmp/q.err" && return 0
        grep -q 'accurate CPU usage' "$tmp/q.err" || break
    done
    cat "$tmp/q.err" >&2
    return 1
}

# ---------------------------------------------------------------- probe/
p=$out/probe
q -f qcow2 "$tmp/a.qcow2" 64M;                      head_of "$tmp/a.qcow2" 1024 "$p/qcow2.head"
q -f raw "$tmp/base.raw" 1M
(cd "$tmp" && q -f qcow2 -b base.raw -F raw b.qcow2); head_of "$tmp/b.qcow2" 1024 "$p/qcow2-backing.head"
q -f qcow "$tmp/a.qcow" 1M;                          head_of "$tmp/a.qcow" 512 "$p/qcow.head"
q -f qed "$tmp/a.qed" 1M;                            head_of "$tmp/a.qed" 512 "$p/qed.head"
q -f vmdk "$tmp/a.vmdk" 1M;                          head_of "$tmp/a.vmdk" 2048 "$p/vmdk-sparse.head"
q -f vmdk -o subformat=monolithicFlat "$tmp/flat.vmdk" 1M
cp "$tmp/flat.vmdk" "$p/vmdk-descriptor.txt"
q -f vdi "$tmp/a.vdi" 1M;                            head_of "$tmp/a.vdi" 512 "$p/vdi.head"
q -f vpc "$tmp/a.vhd" 1M;                            head_of "$tmp/a.vhd" 512 "$p/vhd-dynamic.head"
q -f vpc -o subformat=fixed "$tmp/fixed.vhd" 1M;     ends "$tmp/fixed.vhd" 512 "$p/vhd-fixed.ends"
q -f vhdx "$tmp/a.vhdx" 1M;                          head_of "$tmp/a.vhdx" 1024 "$p/vhdx.head"
q -f parallels "$tmp/a.hdd" 1M;                      head_of "$tmp/a.hdd" 512 "$p/parallels.head"
q -f luks "${secret[@]}" -o key-secret=sec0,iter-time=10 "$tmp/a.luks" 1M
head_of "$tmp/a.luks" 1024 "$p/luks-qemu.head"
# A GPT disk (protective MBR, header, entries; the backup at the end).
truncate -s 1M "$tmp/gpt.img"
sgdisk -n 1:40:0 -t 1:8300 -c 1:fuzz "$tmp/gpt.img" >/dev/null
ends "$tmp/gpt.img" 17408 "$p/gpt.ends"
# An MBR disk with one partition.
truncate -s 1M "$tmp/mbr.img"
echo 'start=64, type=83' | sfdisk -q "$tmp/mbr.img" >/dev/null
ends "$tmp/mbr.img" 512 "$p/mbr.ends"
# A whole (unpadded) ISO 9660 image with Rock Ridge and Joliet.
mkdir -p "$tmp/iso/dir"
echo "fuzz seed" > "$tmp/iso/dir/readme.txt"
genisoimage -quiet -no-pad -R -J -V FUZZ -o "$p/iso9660.iso" "$tmp/iso"
# Formats no tool here creates: their magics, by hand.
printf 'Bochs Virtual HD Image\0Redolog\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0Growing' > "$p/bochs.handmade"
# shellcheck disable=SC2016 # $0 and $1 belong to the cloop script
printf '#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n' > "$p/cloop.handmade"
python3 - "$p/dmg.handmade" <<'EOF'
import struct, sys
koly = bytearray(512)
koly[0:4] = b'koly'
koly[4:12] = struct.pack('>II', 4, 512)
open(sys.argv[1], 'wb').write(bytes(512) + koly)
EOF
printf 'plain raw content, no format\n' > "$p/raw.txt"

# ---------------------------------------------------------------- luks/
l=$out/luks
cp "$p/luks-qemu.head" "$l/luks1-qemu.hdr"
truncate -s 4M "$tmp/l1.img"
printf %s "$pass" | cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 --key-file - "$tmp/l1.img"
head_of "$tmp/l1.img" 1024 "$l/luks1-xts.hdr"
truncate -s 4M "$tmp/l1c.img"
printf %s "$pass" | cryptsetup luksFormat -q --type luks1 -c aes-cbc-essiv:sha256 -s 256 --hash sha1 \
    --pbkdf-force-iterations 1000 --key-file - "$tmp/l1c.img"
head_of "$tmp/l1c.img" 1024 "$l/luks1-cbc.hdr"
truncate -s 20M "$tmp/l2p.img"
printf %s "$pass" | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
    --key-file - "$tmp/l2p.img"
head_of "$tmp/l2p.img" 32768 "$l/luks2-pbkdf2.hdr"
truncate -s 20M "$tmp/l2a.img"
printf %s "$pass" | cryptsetup luksFormat -q --type luks2 --pbkdf argon2id --pbkdf-memory 32 --pbkdf-parallel 1 \
    --pbkdf-force-iterations 4 --sector-size 4096 --key-file - "$tmp/l2a.img"
head_of "$tmp/l2a.img" 32768 "$l/luks2-argon2id-4k.hdr"
for f in luks2-pbkdf2 luks2-argon2id-4k; do
    # The JSON area: after the 4 KiB binary header, up to its NUL.
    python3 - "$l/$f.hdr" "$l/$f.json" <<'EOF'
import sys
d = open(sys.argv[1], 'rb').read()
open(sys.argv[2], 'wb').write(d[4096:16384].split(b'\0', 1)[0])
EOF
done

# ---------------------------------------------------------------- qcow2/
c=$out/qcow2
qe() { q -f qcow2 "${secret[@]}" -o "$luks_opts${1:+,$1}" "$2" "${3:-1M}"; }
qe "" "$tmp/e.qcow2";                                  head_of "$tmp/e.qcow2" 4096 "$c/luks-64k.head"
qe cluster_size=512 "$tmp/e512.qcow2";                 head_of "$tmp/e512.qcow2" 2048 "$c/luks-c512.head"
qe cluster_size=16k,extended_l2=on "$tmp/ex.qcow2";    head_of "$tmp/ex.qcow2" 4096 "$c/luks-extl2.head"
qe cluster_size=4k,encrypt.cipher-alg=aes-128 "$tmp/e128.qcow2"; head_of "$tmp/e128.qcow2" 4096 "$c/luks-aes128-c4k.head"
# One with data: the header, then its L1 and first L2 table appended (the
# harness decodes entries from the end of the input).
qe cluster_size=512 "$tmp/d.qcow2"
qemu-io --object "secret,id=sec0,data=$pass" --image-opts \
    "driver=qcow2,file.filename=$tmp/d.qcow2,encrypt.key-secret=sec0" \
    -c 'write -P 0x55 0 4k' -c 'write -z 8k 4k' -c 'write -P 0xaa 512k 1k' >/dev/null
python3 - "$tmp/d.qcow2" "$c/luks-data-c512.tables" <<'EOF'
import struct, sys
d = open(sys.argv[1], 'rb').read()
cs = 1 << struct.unpack('>I', d[20:24])[0]
l1_size, l1_off = struct.unpack('>IQ', d[36:48])
l1 = d[l1_off:l1_off + 8 * l1_size]
l2_off = struct.unpack('>Q', l1[:8])[0] & 0x00fffffffffffe00
open(sys.argv[2], 'wb').write(d[:2048] + l1 + d[l2_off:l2_off + cs])
EOF
# Refused: unencrypted v3 and v2, a backing file, an external data file.
q -f qcow2 "$tmp/u.qcow2" 1M;                            head_of "$tmp/u.qcow2" 1024 "$c/plain.head"
q -f qcow2 -o compat=0.10 "$tmp/u2.qcow2" 1M;            head_of "$tmp/u2.qcow2" 1024 "$c/plain-v2.head"
cp "$p/qcow2-backing.head" "$c/backing.head"
q -f qcow2 -o data_file="$tmp/data.raw" "$tmp/df.qcow2" 1M; head_of "$tmp/df.qcow2" 1024 "$c/data-file.head"

du -sb "$out"/* "$out"
