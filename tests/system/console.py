"""A serial console on a QEMU unix-socket chardev: read everything into a buffer, wait for
patterns, type lines. Used by tests/system/test_node.py; runnable by hand:
    /usr/bin/python3 tests/system/console.py SOCKET 'command' [password]
logs in as root (when a password is given) and prints the command's output."""
import re
import socket
import sys
import time

ANSI = re.compile(rb"\x1b\[[0-9;=?]*[A-Za-z]")


class Console:
    def __init__(self, path, connect_timeout=30):
        deadline = time.monotonic() + connect_timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.setblocking(False)
        self.buf = b""
        self.pos = 0  # expect() searches from here

    def _read(self, timeout):
        import select
        r, _, _ = select.select([self.sock], [], [], timeout)
        if r:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            if not data:
                raise EOFError("console closed")
            self.buf += ANSI.sub(b"", data.replace(b"\r", b""))

    def text(self):
        return self.buf.decode(errors="replace")

    def expect(self, pattern, timeout):
        """Waits for regex pattern (str) after the last match; returns the match object."""
        rx = re.compile(pattern.encode(), re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf, self.pos)
            if m:
                self.pos = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no %r within %ss; console tail:\n%s" % (
                    pattern, timeout, self.buf[-1500:].decode(errors="replace")))
            self._read(min(left, 0.5))

    def send(self, s):
        self.sock.sendall(s.encode())

    def line(self, s):
        # One character at a time would be kinder to a slow console; a short line is fine.
        self.send(s + "\n")

    def login(self, password, timeout=60):
        self.send("\n")
        self.expect(r"login: *$", timeout)
        self.line("root")
        self.expect(r"Password: *$", 20)
        self.line(password)
        self.expect(r"(^root@[^\n]*# |^\\u@.*\$ )$", 20)

    def run(self, cmd, timeout=30):
        """Runs cmd in the logged-in shell; returns its output (between two markers)."""
        tag = "CAIRN%d" % (time.monotonic_ns() % 1000000)
        self.line("echo %s-BEGIN; %s; echo %s-END rc=$?" % (tag, cmd, tag))
        self.expect(r"^%s-BEGIN\n" % tag, timeout)
        start = self.pos
        m = self.expect(r"^%s-END rc=(\d+)" % tag, timeout)
        out = self.buf[start:m.start()].decode(errors="replace")
        return int(m.group(1)), out

    def close(self):
        self.sock.close()


if __name__ == "__main__":
    c = Console(sys.argv[1])
    if len(sys.argv) > 3:
        c.login(sys.argv[3])
    rc, out = c.run(sys.argv[2], 60)
    sys.stdout.write(out)
    sys.exit(rc)
