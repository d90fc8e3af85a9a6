#!/usr/bin/python3
"""Independent LUKS1/LUKS2 data-segment decryptor/encryptor for test cross-checks.

Usage:
  luks-crypt.py info    IMAGE
  luks-crypt.py decrypt IMAGE OUT   (--volume-key-file F | --key-file PW)
  luks-crypt.py encrypt IMAGE PLAIN (--volume-key-file F | --key-file PW)

The header is parsed here (LUKS1 binary header, LUKS2 binary header + JSON).
The volume key comes from a raw key file (as written by
`cryptsetup luksDump --dump-volume-key --volume-key-file F`) or, with
--key-file, is obtained by running exactly that cryptsetup command.
Decryption uses python3-cryptography only, not libcryptsetup, so it is an
independent implementation of the data path:
  - data units of sector_size bytes (512 for LUKS1), one cipher call each;
  - IV = (byte offset of the unit from the start of the data segment) / 512,
    also for 4096-byte sectors (no iv_large_sectors);
  - modes: xts-plain64, xts-plain, cbc-plain64, cbc-plain, cbc-essiv:<hash>.
`info` prints a JSON object: version, cipher, data_offset, sector_size,
view_size (the decrypted size the filesystem must report).
`encrypt` writes PLAIN (padded with zeros to a whole sector) as ciphertext
into the data segment of IMAGE (the image must be large enough; it is not grown).
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

LUKS_MAGIC = b"LUKS\xba\xbe"


def die(msg):
    sys.stderr.write("luks-crypt: %s\n" % msg)
    sys.exit(2)


def cstr(b):
    return b.split(b"\0", 1)[0].decode("ascii")


def parse_header(path):
    """Return dict(version, cipher_name, cipher_mode, key_bytes, data_offset,
    sector_size, view_size)."""
    fsize = os.stat(path).st_size
    with open(path, "rb") as f:
        hdr = f.read(4096)
        if len(hdr) < 592 or hdr[:6] != LUKS_MAGIC:
            die("%s: not a LUKS image (primary magic)" % path)
        version = struct.unpack(">H", hdr[6:8])[0]
        if version == 1:
            name = cstr(hdr[8:40])
            mode = cstr(hdr[40:72])
            payload = struct.unpack(">I", hdr[104:108])[0]
            key_bytes = struct.unpack(">I", hdr[108:112])[0]
            off = payload * 512
            if off > fsize:
                die("payload offset past end of file")
            return dict(version=1, cipher_name=name, cipher_mode=mode,
                        key_bytes=key_bytes, data_offset=off, sector_size=512,
                        view_size=(fsize - off) // 512 * 512)
        if version != 2:
            die("unknown LUKS version %d" % version)
        hdr_size = struct.unpack(">Q", hdr[8:16])[0]
        if hdr_size < 16384 or hdr_size > 4 << 20:
            die("bad LUKS2 hdr_size %d" % hdr_size)
        f.seek(4096)
        area = f.read(hdr_size - 4096)
    meta = json.loads(area.split(b"\0", 1)[0].decode("utf-8"))
    segs = meta["segments"]
    if list(segs.keys()) != ["0"]:
        die("expected exactly one segment, got %r" % list(segs.keys()))
    seg = segs["0"]
    if seg["type"] != "crypt" or seg.get("iv_tweak", "0") != "0":
        die("unsupported segment %r" % seg)
    enc = seg["encryption"]
    name, mode = enc.split("-", 1)
    off = int(seg["offset"])
    ss = int(seg["sector_size"])
    if seg["size"] == "dynamic":
        if off > fsize:
            die("data offset past end of file")
        size = (fsize - off) // ss * ss
    else:
        size = int(seg["size"])
    key_bytes = None
    for ks in meta["keyslots"].values():
        key_bytes = ks["key_size"]
    return dict(version=2, cipher_name=name, cipher_mode=mode,
                key_bytes=key_bytes, data_offset=off, sector_size=ss,
                view_size=size)


def volume_key(args, image):
    if "--volume-key-file" in args:
        with open(args[args.index("--volume-key-file") + 1], "rb") as f:
            return f.read()
    if "--key-file" in args:
        kf = args[args.index("--key-file") + 1]
        with tempfile.TemporaryDirectory() as td:
            out = os.path.join(td, "vk")
            subprocess.run(["cryptsetup", "luksDump", "--dump-volume-key", "-q",
                            "--key-file", kf, "--volume-key-file", out, image],
                           check=True, stdout=subprocess.DEVNULL)
            with open(out, "rb") as f:
                return f.read()
    die("need --volume-key-file F or --key-file PW")


class SectorCipher:
    def __init__(self, h, key):
        if h["cipher_name"] != "aes":
            die("cipher %s not supported" % h["cipher_name"])
        mode = h["cipher_mode"]
        self.key = key
        self.essiv = None
        if mode.startswith("xts-"):
            self.kind = "xts"
            iv = mode[4:]
        elif mode.startswith("cbc-"):
            self.kind = "cbc"
            iv = mode[4:]
        else:
            die("mode %s not supported" % mode)
        if iv == "plain64":
            self.ivgen = lambda s: struct.pack("<Q", s) + b"\0" * 8
        elif iv == "plain":
            self.ivgen = lambda s: struct.pack("<I", s & 0xFFFFFFFF) + b"\0" * 12
        elif iv.startswith("essiv:"):
            salt = hashlib.new(iv[6:], key).digest()
            ecb = Cipher(algorithms.AES(salt), modes.ECB())

            def essiv(s):
                e = ecb.encryptor()
                return e.update(struct.pack("<Q", s) + b"\0" * 8) + e.finalize()
            self.ivgen = essiv
        else:
            die("IV generator %s not supported" % iv)

    def _cipher(self, sector):
        iv = self.ivgen(sector)
        if self.kind == "xts":
            return Cipher(algorithms.AES(self.key), modes.XTS(iv))
        return Cipher(algorithms.AES(self.key), modes.CBC(iv))

    def decrypt(self, sector, data):
        d = self._cipher(sector).decryptor()
        return d.update(data) + d.finalize()

    def encrypt(self, sector, data):
        e = self._cipher(sector).encryptor()
        return e.update(data) + e.finalize()


def main(argv):
    if len(argv) < 3 or argv[1] not in ("info", "decrypt", "encrypt"):
        sys.stderr.write(__doc__)
        sys.exit(2)
    cmd, image = argv[1], argv[2]
    h = parse_header(image)
    if cmd == "info":
        print(json.dumps(h, sort_keys=True))
        return 0
    if len(argv) < 4:
        die("missing output/plaintext file")
    key = volume_key(argv, image)
    if h["key_bytes"] is not None and len(key) != h["key_bytes"]:
        die("volume key is %d bytes, header says %d" % (len(key), h["key_bytes"]))
    sc = SectorCipher(h, key)
    ss = h["sector_size"]
    off = h["data_offset"]
    chunk = 1 << 20
    if cmd == "decrypt":
        with open(image, "rb") as fi, open(argv[3], "wb") as fo:
            fi.seek(off)
            pos = 0
            while pos < h["view_size"]:
                buf = fi.read(min(chunk, h["view_size"] - pos))
                if len(buf) % ss:
                    die("short read at %d" % (off + pos))
                out = bytearray()
                for i in range(0, len(buf), ss):
                    out += sc.decrypt((pos + i) // 512, buf[i:i + ss])
                fo.write(out)
                pos += len(buf)
        return 0
    # encrypt
    with open(argv[3], "rb") as fp:
        plain = fp.read()
    if len(plain) % ss:
        plain += b"\0" * (ss - len(plain) % ss)
    if off + len(plain) > os.stat(image).st_size:
        die("plaintext (%d bytes) does not fit the data segment" % len(plain))
    with open(image, "r+b") as fo:
        fo.seek(off)
        for i in range(0, len(plain), chunk):
            buf = plain[i:i + chunk]
            out = bytearray()
            for j in range(0, len(buf), ss):
                out += sc.encrypt((i + j) // 512, buf[j:j + ss])
            fo.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
