#!/usr/bin/python3
"""rootfs/kmods.py MODDIR DESTDIR NAME...

Copies the kernel modules NAME... and everything they depend on (the `depends=` field of each
module's .modinfo section, read with objcopy, so no depmod/kmod is needed on the build host)
from MODDIR (an unpacked lib/modules/<version>) to DESTDIR (the same layout), and writes the
modules.dep / modules.alias / modules.softdep that busybox modprobe reads, for exactly that set.
Prints the relative path of each module copied, in load order.
"""
import os
import shutil
import subprocess
import sys


def modinfo(path):
    raw = subprocess.run(["objcopy", "-O", "binary", "--only-section=.modinfo", path, "/dev/stdout"],
                         check=True, stdout=subprocess.PIPE).stdout
    info = {}
    for field in raw.split(b"\0"):
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
