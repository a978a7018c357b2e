#!/usr/bin/python3
"""rootfs/kmods.py MODDIR DESTDIR NAME...

Copies the kernel modules NAME... and everything they depend on (the `depends=` field of each
module's .modinfo section, read from the ELF file here, so neither depmod/kmod nor binutils for
the module's architecture is needed on the build host)
from MODDIR (an unpacked lib/modules/<version>) to DESTDIR (the same layout), and writes the
modules.dep / modules.alias / modules.softdep that busybox modprobe reads, for exactly that set.
Prints the relative path of each module copied, in load order.
"""
import os
import shutil
import struct
import sys


def modinfo_section(path):
    """The bytes of the .modinfo section of an ELF64 module, of any architecture (read here,
    not with objcopy: the build host's binutils need not know the module's machine)."""
    with open(path, "rb") as f:
        elf = f.read()
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        sys.exit("kmods: %s is not an ELF64 file" % path)
    e = "<" if elf[5] == 1 else ">"
    shoff, = struct.unpack_from(e + "Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", elf, 0x3A)

    def section(i):  # (name offset, file offset, size)
        name, _, _, _, off, size = struct.unpack_from(e + "IIQQQQ", elf, shoff + i * shentsize)
        return name, off, size

    _, stroff, _ = section(shstrndx)
    for i in range(shnum):
        name, off, size = section(i)
        if elf[stroff + name:elf.index(b"\0", stroff + name)] == b".modinfo":
            return elf[off:off + size]
    return b""


def modinfo(path):
    info = {}
    for field in modinfo_section(path).split(b"\0"):
        if b"=" in field:
            k, v = field.decode(errors="replace").split("=", 1)
            info.setdefault(k, []).append(v)
    return info


def norm(name):
    return name.replace("-", "_")


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    src, dst, names = argv[1], argv[2], argv[3:]
    index = {}
    for d, _, files in os.walk(os.path.join(src, "kernel")):
        for f in files:
            if f.endswith(".ko"):
                index[norm(f[:-3])] = os.path.relpath(os.path.join(d, f), src)
    infos, order, seen = {}, [], set()

    def visit(name, chain):
        n = norm(name)
        if n in seen:
            return
        if n not in index:
            sys.exit("kmods: module %s not found under %s (needed by %s)" % (name, src, " -> ".join(chain) or "the board"))
        seen.add(n)
        info = infos[n] = modinfo(os.path.join(src, index[n]))
        for dep in filter(None, ",".join(info.get("depends", [""])).split(",")):
            visit(dep, chain + [n])
        order.append(n)  # after its dependencies: load order

    for name in names:
        visit(name, [])

    def closure(n, acc):
        for dep in filter(None, ",".join(infos[n].get("depends", [""])).split(",")):
            d = norm(dep)
            if d not in acc:
                acc.append(d)
                closure(d, acc)
        return acc

    os.makedirs(dst, exist_ok=True)
    dep_lines, alias_lines, soft_lines = [], [], []
    for n in sorted(order, key=lambda m: index[m]):
        rel = index[n]
        os.makedirs(os.path.join(dst, os.path.dirname(rel)), exist_ok=True)
        shutil.copyfile(os.path.join(src, rel), os.path.join(dst, rel))
        # kmod's format: the module, then its dependencies, loaded last to first.
        deps = closure(n, [])
        deps.sort(key=lambda d: -order.index(d))
        dep_lines.append("%s: %s" % (rel, " ".join(index[d] for d in deps)) if deps else rel + ":")
        for a in infos[n].get("alias", []):
            alias_lines.append("alias %s %s" % (a, n))
        for s in infos[n].get("softdep", []):
            soft_lines.append("softdep %s %s" % (n, s))
    for fname, lines in (("modules.dep", dep_lines), ("modules.alias", sorted(alias_lines)),
                         ("modules.softdep", soft_lines)):
        with open(os.path.join(dst, fname), "w") as f:
            f.write("".join(line + "\n" for line in lines))
    for n in order:
        print(index[n])


if __name__ == "__main__":
    main(sys.argv)
