#!/usr/bin/python3
"""rootfs/mkcpio.py STAGING_DIR OUT.cpio [--dev PATH:c|b:MAJOR:MINOR:MODE ...]

Writes STAGING_DIR as a newc ("070701") cpio archive for the kernel's initramfs, the same
bytes every time for the same tree: entries sorted by path (a directory before its contents),
owner root:root, every mtime SOURCE_DATE_EPOCH (default 0), inode numbers assigned in order,
no hard links, modes from the staging tree (only permission bits and type). Device nodes,
which an unprivileged build cannot create on disk, are given with --dev. Nothing here needs root.
"""
import os
import stat
import sys


def entry(out, name, mode, ino, data=b"", rdev=(0, 0), nlink=1, mtime=0):
    nb = name.encode() + b"\0"
    hdr = "070701" + "".join("%08X" % v for v in (
        ino, mode, 0, 0, nlink, mtime, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0))
    out.write(hdr.encode() + nb)
    out.write(b"\0" * ((-(110 + len(nb))) % 4))
    out.write(data)
    out.write(b"\0" * ((-len(data)) % 4))


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    root, dst = argv[1], argv[2]
    devs = {}
    rest = argv[3:]
    while rest:
        if rest[0] != "--dev" or len(rest) < 2:
            sys.exit(__doc__)
        path, kind, major, minor, mode = rest[1].split(":")
        devs[path.strip("/")] = ((stat.S_IFCHR if kind == "c" else stat.S_IFBLK) | int(mode, 8),
                                 (int(major), int(minor)))
        rest = rest[2:]
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    paths = []
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        for n in dirs + files:
            paths.append(os.path.normpath(os.path.join(rel, n)))
    for p in devs:
        if p not in paths:
            paths.append(p)
    # Sort by path components so that "a/b" follows "a" and precedes "a-b".
    paths.sort(key=lambda p: p.split("/"))
    with open(dst + ".tmp", "wb") as out:
        ino = 0
        for p in paths:
            ino += 1
            if p in devs:
                mode, rdev = devs[p]
                entry(out, p, mode, ino, rdev=rdev, mtime=mtime)
                continue
            full = os.path.join(root, p)
            st = os.lstat(full)
            perm = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                entry(out, p, stat.S_IFLNK | 0o777, ino, os.readlink(full).encode(), mtime=mtime)
            elif stat.S_ISDIR(st.st_mode):
                entry(out, p, stat.S_IFDIR | perm, ino, nlink=2, mtime=mtime)
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    entry(out, p, stat.S_IFREG | perm, ino, f.read(), mtime=mtime)
            else:
                sys.exit("mkcpio: %s: unsupported file type" % full)
        entry(out, "TRAILER!!!", 0, 0, nlink=1)
        out.write(b"\0" * ((-out.tell()) % 512))
    os.replace(dst + ".tmp", dst)


if __name__ == "__main__":
    main(sys.argv)
