#!/usr/bin/python3
"""s3cmd 2.3 (SigV4, path-style via host_bucket without %(bucket)s): mb, put, get, ls, info,
del, rb, and a 20 MiB multipart put with 5 MiB chunks."""
import os

from common import (Clients, Env, Suite, check, eq, md5_hex, multipart_etag, sha256_file,
                    write_random_file)

E = Env()
T = Suite("s3cmd")
C = Clients(os.path.join(E.work, "conf"), E.endpoint, E.ak, E.sk)
W = E.work
B = "s3://s3cmd-bucket"
MiB = 1024 * 1024


def s3cmd(*args, **kw):
    return C.s3cmd(*args, **kw)


@T.case("mb and ls of buckets")
def _():
    s3cmd("mb", B)
    rc, out, _ = s3cmd("ls")
    check(B in out.split(), "bucket not in ls: %r" % out)


SMALL = os.path.join(W, "small file.txt")
write_random_file(SMALL, 3000)


@T.case("put, ls, get")
def _():
    s3cmd("put", SMALL, B + "/docs/small file.txt")
    rc, out, _ = s3cmd("ls", B + "/docs/")
    fields = out.split(None, 3) if out.strip() else []
    check(len(fields) == 4 and fields[2] == "3000" and fields[3].strip() == B + "/docs/small file.txt",
          "ls output %r" % out)
    rc, out, _ = s3cmd("ls", B)
    check("DIR" in out and B + "/docs/" in out, "ls of the bucket root %r" % out)
    dst = os.path.join(W, "small.out")
    s3cmd("get", "--force", B + "/docs/small file.txt", dst)
    eq(sha256_file(dst), sha256_file(SMALL), "sha256")


@T.case("info shows size and MD5")
def _():
    rc, out, _ = s3cmd("info", B + "/docs/small file.txt")
    with open(SMALL, "rb") as f:
        md5 = md5_hex(f.read())
    info = {ln.split(":", 1)[0].strip(): ln.split(":", 1)[1].strip() for ln in out.splitlines() if ":" in ln}
    eq(info.get("File size"), "3000", "File size (info: %r)" % info)
    eq(info.get("MD5 sum"), md5, "MD5 sum")


@T.case("put 20 MiB with --multipart-chunk-size-mb=5, get back")
def _():
    big = os.path.join(W, "big.bin")
    write_random_file(big, 20 * MiB)
    s3cmd("put", "--multipart-chunk-size-mb=5", big, B + "/big.bin")
    with open(big, "rb") as f:
        parts = [f.read(5 * MiB) for _ in range(4)]
    h = C.aws("s3api", "head-object", "--bucket", "s3cmd-bucket", "--key", "big.bin", json_out=True)
    eq(h["ETag"], '"%s"' % multipart_etag(parts), "multipart ETag")
    dst = os.path.join(W, "big.out")
    s3cmd("get", "--force", B + "/big.bin", dst)
    eq(sha256_file(dst), sha256_file(big), "sha256")


@T.case("get of a missing object fails (404 / does not exist)")
def _():
    rc, out, err = s3cmd("get", "--force", B + "/nope", os.path.join(W, "nope"), check=False)
    check(rc != 0 and ("404" in err or "NoSuchKey" in err or "does not exist" in err),
          "rc=%d err=%r" % (rc, err[-300:]))
    check(not os.path.exists(os.path.join(W, "nope")), "a local file was created")


@T.case("rb of a non-empty bucket fails (BucketNotEmpty)")
def _():
    rc, out, err = s3cmd("rb", B, check=False)
    check(rc != 0 and "BucketNotEmpty" in err, "rc=%d err=%r" % (rc, err[-300:]))


@T.case("del, then rb")
def _():
    s3cmd("del", B + "/docs/small file.txt")
    s3cmd("del", B + "/big.bin")
    rc, out, _ = s3cmd("ls", "--recursive", B)
    eq(out.strip(), "", "listing after del")
    s3cmd("rb", B)
    rc, out, _ = s3cmd("ls")
    check(B not in out, "bucket still listed: %r" % out)


T.done()
