#!/usr/bin/python3
"""rclone 1.60 (s3, provider Other, path-style): mkdir, copy a tree (including a file big
enough for rclone's multipart upload), check (hashes), lsf, delete, purge."""
import os

from common import (Clients, Env, Suite, check, compare_trees, eq, make_tree,
                    write_random_file)

E = Env()
T = Suite("rclone")
C = Clients(os.path.join(E.work, "conf"), E.endpoint, E.ak, E.sk)
W = E.work
R = "cairn:rclone-bucket"
TREE = os.path.join(W, "tree")
PATHS = make_tree(TREE, 30)
MiB = 1024 * 1024
# rclone switches to multipart at --s3-upload-cutoff (200 MiB default); lower it so a 12 MiB
# file goes up in 5 MiB chunks.
write_random_file(os.path.join(TREE, "big", "multipart.bin"), 12 * MiB)
PATHS.append("big/multipart.bin")
MP_FLAGS = ["--s3-upload-cutoff", "6M", "--s3-chunk-size", "5M"]


def rclone(*args, **kw):
    return C.rclone(*args, **kw)


@T.case("mkdir creates the bucket")
def _():
    rclone("mkdir", R)
    rc, out, _ = rclone("lsd", "cairn:")
    check("rclone-bucket" in out, "lsd output %r" % out)


@T.case("copy a directory tree (31 files, one multipart)")
def _():
    rclone("copy", TREE, R + "/tree", *MP_FLAGS)
    rc, out, _ = rclone("lsf", "-R", "--files-only", R + "/tree")
    eq(sorted(out.splitlines()), sorted(PATHS), "lsf -R --files-only")


@T.case("check: hashes and sizes match")
def _():
    rc, out, err = rclone("check", TREE, R + "/tree")
    check("0 differences found" in err, "check output %r" % err[-500:])
    check("Hashes could not be checked" not in err, "hashes not compared: %r" % err[-500:])


@T.case("check detects a changed local file")
def _():
    p = os.path.join(TREE, PATHS[5])
    with open(p, "ab") as f:
        f.write(b"changed")
    rc, out, err = rclone("check", TREE, R + "/tree", check=False)
    check(rc != 0 and "1 differences found" in err, "rc=%d err=%r" % (rc, err[-500:]))
    rclone("copy", TREE, R + "/tree")
    rclone("check", TREE, R + "/tree")


@T.case("copy back down: identical tree")
def _():
    back = os.path.join(W, "back")
    rclone("copy", R + "/tree", back)
    eq(compare_trees(TREE, back), [], "tree differences")


@T.case("lsf shows top-level dirs and files")
def _():
    rc, out, _ = rclone("lsf", R + "/tree")
    top = sorted(out.splitlines())
    want = sorted({p.split("/", 1)[0] + ("/" if "/" in p else "") for p in PATHS})
    eq(top, want, "lsf")


@T.case("delete removes files, keeps the bucket")
def _():
    rclone("delete", R + "/tree/sub")
    rc, out, _ = rclone("lsf", "-R", "--files-only", R + "/tree")
    eq(sorted(out.splitlines()), sorted(p for p in PATHS if not p.startswith("sub/")), "after delete")


@T.case("purge removes everything including the bucket")
def _():
    rclone("purge", R)
    rc, out, _ = rclone("lsd", "cairn:")
    check("rclone-bucket" not in out, "bucket still there: %r" % out)
    st = C.aws("s3api", "list-objects-v2", "--bucket", "rclone-bucket", check=False)
    check(st[0] != 0 and "NoSuchBucket" in st[2], "bucket still answers: %r" % (st,))


T.done()
