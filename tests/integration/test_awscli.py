#!/usr/bin/python3
"""`aws s3` (awscli 2.9, high-level commands): mb, cp (small and 64 MiB multipart), ls, sync of
a tree with odd names both ways, rm --recursive, rb."""
import os

from common import (Clients, Env, Suite, QUICK, check, compare_trees, eq, make_tree,
                    sha256_file, write_random_file)

E = Env()
T = Suite("awscli")
C = Clients(os.path.join(E.work, "conf"), E.endpoint, E.ak, E.sk)
W = E.work
B = "s3://aws-cli-bucket"
MiB = 1024 * 1024
BIG = 16 * MiB if QUICK else 64 * MiB


def s3(*args, **kw):
    return C.aws("s3", *args, **kw)


@T.case("mb")
def _():
    rc, out, _ = s3("mb", B)
    check("make_bucket: aws-cli-bucket" in out, "output %r" % out)
    rc, out, _ = s3("ls")
    check("aws-cli-bucket" in out, "ls does not show the bucket: %r" % out)


@T.case("cp small file up and back")
def _():
    src = os.path.join(W, "small.bin")
    write_random_file(src, 12345)
    s3("cp", src, B + "/small.bin")
    s3("cp", B + "/small.bin", os.path.join(W, "small.out"))
    eq(sha256_file(os.path.join(W, "small.out")), sha256_file(src), "sha256")


@T.case("cp %d MiB file (multipart, 8 MiB parts) up and back" % (BIG // MiB))
def _():
    src = os.path.join(W, "big.bin")
    write_random_file(src, BIG)
    s3("cp", src, B + "/dir/big.bin")
    h = C.aws("s3api", "head-object", "--bucket", "aws-cli-bucket", "--key", "dir/big.bin",
              json_out=True)
    eq(h["ContentLength"], BIG, "size")
    check(h["ETag"].endswith('-%d"' % (BIG // (8 * MiB))), "ETag %r is not a %d-part ETag"
          % (h["ETag"], BIG // (8 * MiB)))
    out = os.path.join(W, "big.out")
    s3("cp", B + "/dir/big.bin", out)
    eq(sha256_file(out), sha256_file(src), "sha256 of the big file")
    os.unlink(out)


@T.case("ls and ls --recursive")
def _():
    rc, out, _ = s3("ls", B + "/")
    lines = [ln.split() for ln in out.splitlines()]
    check(["PRE", "dir/"] in lines, "no PRE dir/ in %r" % out)
    check(any(ln[-1] == "small.bin" and ln[-2] == "12345" for ln in lines if len(ln) >= 4),
          "no small.bin 12345 in %r" % out)
    rc, out, _ = s3("ls", "--recursive", B)
    names = sorted(ln.split(None, 3)[3] for ln in out.splitlines())
    eq(names, ["dir/big.bin", "small.bin"], "recursive listing")


TREE = os.path.join(W, "tree")
PATHS = make_tree(TREE, 50)


@T.case("sync a 50-file tree with nested paths and odd names up")
def _():
    rc, out, _ = s3("sync", TREE, B + "/tree")
    eq(out.count("upload:"), 50, "uploads reported")
    rc, out, _ = s3("ls", "--recursive", B + "/tree/")
    names = sorted(ln.split(None, 3)[3] for ln in out.splitlines())
    eq(names, sorted("tree/" + p for p in PATHS), "keys after sync")


@T.case("sync again uploads nothing")
def _():
    rc, out, _ = s3("sync", TREE, B + "/tree")
    eq(out.count("upload:"), 0, "re-uploads: %r" % out[:500])


@T.case("sync back down: identical tree")
def _():
    back = os.path.join(W, "back")
    s3("sync", B + "/tree", back)
    eq(compare_trees(TREE, back), [], "tree differences")


@T.case("sync --delete removes a deleted file remotely")
def _():
    victim = os.path.join(TREE, PATHS[3])
    os.unlink(victim)
    rc, out, _ = s3("sync", "--delete", TREE, B + "/tree")
    eq(out.count("delete:"), 1, "deletes reported: %r" % out)
    rc, out, _ = s3("ls", "--recursive", B + "/tree/")
    eq(len(out.splitlines()), 49, "objects left")


@T.case("rm --recursive and rb")
def _():
    rc, out, _ = s3("rm", "--recursive", B)
    eq(out.count("delete:"), 49 + 2, "deletes reported")
    rc, out, _ = s3("ls", "--recursive", B)
    eq(out.strip(), "", "listing after rm")
    rc, out, _ = s3("rb", B)
    check("remove_bucket: aws-cli-bucket" in out, "output %r" % out)
    rc, out, _ = s3("ls")
    check("aws-cli-bucket" not in out, "bucket still listed: %r" % out)


@T.case("rb of a missing bucket fails with NoSuchBucket")
def _():
    rc, out, err = s3("rb", B, check=False)
    check(rc != 0 and "NoSuchBucket" in err, "rc=%d err=%r" % (rc, err[-300:]))


T.done()
