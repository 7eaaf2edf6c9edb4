"""Headless Chromium driven over the DevTools protocol, for tests that must
click (a --dump-dom run cannot): a minimal WebSocket client (RFC 6455,
text frames, client-masked) on the standard library, talking to 127.0.0.1."""
import base64
import json
import os
import re
import socket
import struct
import subprocess
import time
import urllib.request


class CdpError(RuntimeError):
    pass


class _WebSocket:
    def __init__(self, url, timeout=30):
        m = re.match(r"ws://([^/:]+):(\d+)(/.*)", url)
        if not m:
            raise CdpError("not a ws:// URL: %s" % url)
        host, port, path = m.group(1), int(m.group(2)), m.group(3)
        self.s = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, host, port, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.s.recv(4096)
            if not chunk:
                raise CdpError("DevTools closed the connection during the handshake")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise CdpError("DevTools refused the WebSocket: %r" % head[:200])

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise CdpError("DevTools closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, text):
        data = text.encode()
        n = len(data)
        head = bytes([0x81])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode = b0 & 0x0F
            if opcode == 8:
                raise CdpError("DevTools closed the WebSocket")
            if opcode in (9, 10):  # ping, pong: not expected from Chromium, ignored
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()

    def close(self):
        self.s.close()


class Browser:
    """One headless Chromium with one page."""

    def __init__(self, chromium, user_data_dir, width=1200, height=1600):
        self.p = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                   "--user-data-dir=" + user_data_dir, "--remote-debugging-address=127.0.0.1",
                                   "--remote-debugging-port=0", "--window-size=%d,%d" % (width, height),
                                   "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = self.p.stderr.readline()
            if not line and self.p.poll() is not None:
                raise CdpError("chromium exited with %s before DevTools listened" % self.p.returncode)
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
        if port is None:
            raise CdpError("chromium did not say where DevTools listens")
        targets = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=20).read())
        pages = [t for t in targets if t.get("type") == "page"]
        if not pages:
            raise CdpError("no page target: %s" % targets)
        self.ws = _WebSocket(pages[0]["webSocketDebuggerUrl"])
        self.next_id = 1

    def call(self, method, **params):
        mid = self.next_id
        self.next_id += 1
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise CdpError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def eval(self, expression):
        """The value of a JavaScript expression in the page (promises awaited)."""
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise CdpError("%s: %s" % (expression[:80], r["exceptionDetails"].get("exception", r["exceptionDetails"])))
        return r["result"].get("value")

    def wait_for(self, expression, timeout=30, what=None):
        """Polls until `expression` is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.eval(expression)
            if v:
                return v
            if time.monotonic() > deadline:
                raise CdpError("timed out waiting for %s" % (what or expression))
            time.sleep(0.2)

    def navigate(self, url):
        self.call("Page.enable")
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href.startsWith(%s)" % json.dumps(url[:40]))

    def reload(self):
        self.eval("window.__before_reload = 1")
        self.call("Page.reload", ignoreCache=True)
        self.wait_for("document.readyState === 'complete' && window.__before_reload === undefined", what="the reload")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.ws.close()
        finally:
            self.p.terminate()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
