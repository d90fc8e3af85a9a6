#!/bin/sh
# Installs what safeimgfs needs to build, test and run its demo on Debian 12.
# Does nothing when every package is already installed. Needs root for apt-get.
set -eu

# The examples (examples/*.sh) also use mount (umount, losetup), e2fsprogs
# (mkfs.ext4, debugfs), mtools (FAT without mounting) and kmod (modprobe):
# all of them are on a full Debian system, not all in a minimal container.
PKGS="build-essential autoconf automake libtool pkg-config
      libfuse3-dev fuse3 libcryptsetup-dev cryptsetup-bin libssl-dev libjson-c-dev libcmocka-dev
      qemu-utils python3 python3-cryptography genisoimage gdisk fdisk util-linux
      clang libclang-rt-14-dev
      dosfstools exfatprogs ntfs-3g udftools syslinux-utils isolinux
      mount e2fsprogs mtools kmod"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages:$missing (run as root to install them)" >&2
    exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
