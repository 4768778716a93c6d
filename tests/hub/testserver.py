"""What the test hub (hf_endpoint.py) and the registry's token server
(token_server.py) share: a quiet HTTP/1.1 handler whose TLS handshake
happens in its own thread, a threading server that binds without a
reverse lookup and writes one log line at a time, a listener on a free
port below the ephemeral range, and the URL file the tests wait on."""
import errno
import http.server
import os
import random
import socket
import ssl
import threading


class QuietHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sys_version = ""

    def handle(self):
        try:
            if isinstance(self.connection, ssl.SSLSocket):
                self.connection.do_handshake()
            super().handle()
        except (OSError, ValueError):
            self.close_connection = True

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    logf = None
    log_lock = threading.Lock()

    def server_bind(self):
        # No getfqdn: a reverse lookup may hang without DNS.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        pass

    def log(self, line):
        if self.logf is None:
            return
        with self.log_lock:
            self.logf.write(line)
            self.logf.flush()


def listen(cls, handler, port, ctx):
    """A server on 127.0.0.1:PORT, or on a free random port in 20000-31999 for 0."""
    for _ in range(100):
        p = port or random.randint(20000, 31999)
        try:
            srv = cls(("127.0.0.1", p), handler)
        except OSError as e:
            if port or e.errno != errno.EADDRINUSE:
                raise
            continue
        if ctx is not None:
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
        return srv
    raise OSError(errno.EADDRINUSE, "no free port in 20000-31999")


def write_url_file(path, text):
    """Write TEXT to PATH in one step (tests poll for it)."""
    if not path:
        return
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text + "\n")
    os.replace(path + ".tmp", path)
