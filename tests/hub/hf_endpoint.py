#!/usr/bin/env python3
"""A Hugging Face Hub stand-in for tests: the hub's resolve and API routes on
one listener, signed-URL blob downloads (the CDN) on another. Stdlib only.

    hf_endpoint.py --data DIR [--port N] [--cdn-port N] [--cert PEM --key KEY]
                   [--token TOKEN] [--denied-token TOKEN]... [--gated REPO]...
                   [--log FILE] [--cdn-log FILE] [--url-file FILE] [--ttl SECONDS]

Data: DIR/ORG/NAME/refs.json maps branch and tag names to 40-hex commit ids
({"main": "<40hex>"}); DIR/ORG/NAME/COMMIT/PATH are that commit's files.
Dataset repos live under DIR/datasets/ORG/NAME (served at /datasets/...).
Files over 1 KiB are LFS files.

Hub routes (GET and HEAD):
  /[datasets/]REPO/resolve/REVISION/PATH   small files: 200, ETag = git blob
      sha1; LFS files: 302 to CDN/blobs/SHA256?expires=UNIX&sig=HMAC with
      X-Linked-Etag, X-Linked-Size, ETag; both carry X-Repo-Commit.
  /api/{models,datasets}/REPO[/revision/REVISION]  {"id", "sha", "siblings", ...}
  /api/{models,datasets}/REPO/tree/REVISION[/PATH][?recursive=true]
Errors as the hub sends them: 404 with X-Error-Code RepoNotFound,
RevisionNotFound or EntryNotFound (the last with X-Repo-Commit); a gated
repo (--gated ORG/NAME, or datasets/ORG/NAME) without a token: 401
X-Error-Code GatedRepo; with a --denied-token: 403 GatedRepo; any other
token than --token and --denied-token, on any route: 401 with X-Error-Message
"Invalid credentials in Authorization header". JSON bodies {"error": MSG}.

CDN: GET and HEAD /blobs/SHA256?expires=&sig= with single-range support;
403 for a bad or expired signature; no auth.

Without --cert both listeners speak plain http. Port 0 (the default) picks
a free port in 20000-31999. --url-file gets "HUB_URL CDN_URL\\n" (written
atomically) once both listen.

Logs, one line a request, written before the response's last byte goes out:
  hub: METHOD PATH STATUS AUTH=yes|no
  CDN: METHOD PATH STATUS AUTH=yes|no RANGE=HEADER|- BYTES_SENT
PATH is the request path without its query; AUTH says whether an
Authorization header came in; BYTES_SENT counts body bytes handed to the
socket.
"""
import argparse
import email.utils
import errno
import hashlib
import hmac
import json
import os
import re
import ssl
import sys
import threading
import time
import urllib.parse

import testserver

CHUNK = 1 << 20
LFS_THRESHOLD = 1024
COMMIT_RE = re.compile(r"[0-9a-f]{40}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
EXPOSE = ("X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,X-Total-Count,ETag,Link,"
          "Accept-Ranges,Content-Range,X-Linked-Size,X-Linked-ETag,X-Xet-Hash")


class Store:
    """The repos under the data dir, and the hashes of their files (cached
    by path, size and mtime)."""

    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.lock = threading.Lock()
        self.hashes = {}  # path -> (size, mtime_ns, kind, hex)
        self.blobs = {}  # sha256 -> path

    @staticmethod
    def safe(parts):
        return all(p not in ("", ".", "..") and "/" not in p and "\0" not in p for p in parts)

    def repo_dir(self, kind, repo):
        parts = repo.split("/")
        if not self.safe(parts) or len(parts) > 2:
            return None
        base = os.path.join(self.root, "datasets") if kind == "dataset" else self.root
        d = os.path.join(base, *parts)
        return d if os.path.isfile(os.path.join(d, "refs.json")) else None

    @staticmethod
    def resolve(rdir, revision):
        try:
            with open(os.path.join(rdir, "refs.json"), encoding="utf-8") as f:
                refs = json.load(f)
        except (OSError, ValueError):
            refs = {}
        commit = refs.get(revision)
        if commit is None and COMMIT_RE.fullmatch(revision):
            commit = revision
        if commit and COMMIT_RE.fullmatch(commit) and os.path.isdir(os.path.join(rdir, commit)):
            return commit
        return None

    def file(self, rdir, commit, rel):
        parts = rel.split("/")
        if not self.safe(parts):
            return None
        p = os.path.join(rdir, commit, *parts)
        return p if os.path.isfile(p) else None

    @staticmethod
    def files(rdir, commit):
        """Relative paths of a commit's files, sorted."""
        top = os.path.join(rdir, commit)
        out = []
        for d, _, names in os.walk(top):
            for n in names:
                out.append(os.path.relpath(os.path.join(d, n), top).replace(os.sep, "/"))
        return sorted(out)

    def info(self, path):
        """(size, is_lfs, hex): sha256 for LFS files, the git blob sha1 otherwise."""
        st = os.stat(path)
        lfs = st.st_size > LFS_THRESHOLD
        with self.lock:
            c = self.hashes.get(path)
        if c and c[0] == st.st_size and c[1] == st.st_mtime_ns:
            return st.st_size, lfs, c[3]
        h = hashlib.sha256() if lfs else hashlib.sha1(b"blob %d\0" % st.st_size)
        with open(path, "rb") as f:
            while True:
                b = f.read(CHUNK)
                if not b:
                    break
                h.update(b)
        digest = h.hexdigest()
        with self.lock:
            self.hashes[path] = (st.st_size, st.st_mtime_ns, lfs, digest)
            if lfs:
                self.blobs[digest] = path
        return st.st_size, lfs, digest

    @staticmethod
    def git_oid(size, lfs, digest):
        """The git object id: the blob's sha1, or for LFS files the pointer file's."""
        if not lfs:
            return digest
        pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (digest, size)
        return hashlib.sha1(b"blob %d\0%s" % (len(pointer), pointer.encode())).hexdigest()

    def blob(self, sha):
        """The path of an LFS file with this sha256 (hashing the data dir once if unknown)."""
        with self.lock:
            p = self.blobs.get(sha)
        if p and os.path.isfile(p):
            return p
        for d, subdirs, names in os.walk(self.root):
            if "refs.json" not in names:
                continue
            subdirs[:] = []
            for commit in os.listdir(d):
                if COMMIT_RE.fullmatch(commit):
                    for rel in self.files(d, commit):
                        q = os.path.join(d, commit, *rel.split("/"))
                        if os.path.getsize(q) > LFS_THRESHOLD:
                            self.info(q)
        with self.lock:
            return self.blobs.get(sha)


def parse_range(header, size):
    """(start, end) inclusive, "unsatisfiable", or None to send it all."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header or "")
    if not m or (m[1] == "" and m[2] == ""):
        return None
    if m[1] == "":
        n = int(m[2])
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(m[1])
    end = int(m[2]) if m[2] else size - 1
    if start >= size:
        return "unsatisfiable"
    if end < start:
        return None
    return start, min(end, size - 1)


class Handler(testserver.QuietHandler):
    server_version = "onramp-hf-test"
    timeout = 120

    def do_GET(self):
        self.range_header = self.headers.get("Range")
        url = urllib.parse.urlsplit(self.path)
        self.req_path = url.path
        self.query = urllib.parse.parse_qs(url.query)
        raw = [p for p in url.path.split("/")]
        parts = [urllib.parse.unquote(p) for p in raw[1:]]
        try:
            self.server.route(self, parts)
        except (OSError, ssl.SSLError):
            self.close_connection = True

    do_HEAD = do_GET

    # -- responses

    def write_log(self, status, sent):
        auth = "yes" if self.headers.get("Authorization") is not None else "no"
        path = self.req_path.replace(" ", "%20")
        if self.server.kind == "cdn":
            rng = (self.range_header or "-").replace(" ", "")
            line = f"{self.command} {path} {status} AUTH={auth} RANGE={rng} {sent}\n"
        else:
            line = f"{self.command} {path} {status} AUTH={auth}\n"
        self.server.log(line)

    def head_bytes(self, status, headers):
        reason = self.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}",
                 f"Date: {email.utils.formatdate(usegmt=True)}",
                 f"Server: {self.server_version}"]
        lines += [f"{k}: {v}" for k, v in headers]
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def reply(self, status, headers, body=b"", path=None, start=0, length=0):
        """Send a response: BODY, or LENGTH bytes of PATH from START. The log
        line is written before the last byte goes out."""
        n = length if path is not None else len(body)
        head = self.head_bytes(status, [("Content-Length", str(n))] + headers)
        if self.command == "HEAD" or n == 0:
            self.write_log(status, 0)
            self.wfile.write(head)
            return
        if path is None:
            self.write_log(status, n)
            self.wfile.write(head + body)
            return
        sent, logged = 0, False
        try:
            with open(path, "rb") as f:
                f.seek(start)
                self.wfile.write(head)
                left = n
                while left:
                    chunk = f.read(min(CHUNK, left))
                    if not chunk:
                        raise OSError(errno.EIO, "file shrank")
                    left -= len(chunk)
                    if left == 0:
                        self.write_log(status, sent + len(chunk))
                        logged = True
                    self.wfile.write(chunk)
                    sent += len(chunk)
        except OSError:
            self.close_connection = True
            if not logged:
                self.write_log(status, sent)

    def send_file(self, status_headers, path, size, etag):
        """200 or 206/416 as the Range header asks."""
        headers = [("Accept-Ranges", "bytes"), ("ETag", etag)] + status_headers
        r = parse_range(self.range_header, size)
        if r == "unsatisfiable":
            self.reply(416, [("Content-Range", f"bytes */{size}"), ("Content-Type", "text/plain")] + headers,
                       b"Requested Range Not Satisfiable\n")
        elif r is None:
            self.reply(200, headers, path=path, start=0, length=size)
        else:
            a, b = r
            self.reply(206, [("Content-Range", f"bytes {a}-{b}/{size}")] + headers,
                       path=path, start=a, length=b - a + 1)

    def json_reply(self, status, obj, headers=()):
        body = json.dumps(obj).encode()
        self.reply(status, [("Content-Type", "application/json; charset=utf-8")] + list(headers), body)

    def hub_error(self, status, code, message, headers=()):
        hs = [("X-Error-Message", message)] + list(headers)
        if code:
            hs.insert(0, ("X-Error-Code", code))
        self.json_reply(status, {"error": message}, hub_headers() + hs)


def hub_headers():
    return [("X-Request-Id", "Root=1-%08x-%s" % (int(time.time()), os.urandom(12).hex())),
            ("Vary", "Origin, Accept-Encoding"),
            ("Access-Control-Allow-Origin", "https://huggingface.co"),
            ("Access-Control-Expose-Headers", EXPOSE)]


Server = testserver.Server


class Hub(Server):
    kind = "hub"

    # Authorization: None (no header), "ok" (the token), "denied" (a valid
    # token without access to gated repos), or an error was sent (False).
    def auth(self, h):
        a = h.headers.get("Authorization")
        if a is None:
            return None
        if a.startswith("Bearer "):
            tok = a[len("Bearer "):].strip()
            if self.token and hmac.compare_digest(tok, self.token):
                return "ok"
            if tok in self.denied:
                return "denied"
        h.hub_error(401, None, "Invalid credentials in Authorization header")
        return False

    def gate(self, h, kind, repo, auth):
        """True when the request may go on; otherwise the error is sent."""
        key = ("datasets/" if kind == "dataset" else "") + repo
        if key not in self.gated or auth == "ok":
            return True
        noun = "dataset" if kind == "dataset" else "model"
        if auth == "denied":
            h.hub_error(403, "GatedRepo", f"Access to {noun} {repo} is restricted and you are not in the authorized "
                        f"list. Visit {self.url}/{key} to ask for access.")
        else:
            h.hub_error(401, "GatedRepo", f"Access to {noun} {repo} is restricted. You must have access to it and "
                        "be authenticated to access it. Please log in.")
        return False

    def find_repo(self, h, kind, repo):
        rdir = self.store.repo_dir(kind, repo)
        if rdir is None:
            h.hub_error(404, "RepoNotFound", "Repository not found")
        return rdir

    def route(self, h, parts):
        auth = self.auth(h)
        if auth is False:
            return
        if len(parts) >= 3 and parts[0] == "api" and parts[1] in ("models", "datasets"):
            return self.api(h, "dataset" if parts[1] == "datasets" else "model", parts[2:], auth)
        kind = "model"
        if parts and parts[0] == "datasets":
            kind, parts = "dataset", parts[1:]
        i = 2 if len(parts) > 3 and parts[2] == "resolve" else 1
        if len(parts) < i + 3 or parts[i] != "resolve":
            return h.hub_error(404, None, "Not Found")
        self.resolve(h, kind, "/".join(parts[:i]), parts[i + 1], "/".join(parts[i + 2:]), auth)

    def resolve(self, h, kind, repo, revision, rel, auth):
        rdir = self.find_repo(h, kind, repo)
        if rdir is None or not self.gate(h, kind, repo, auth):
            return
        commit = self.store.resolve(rdir, revision)
        if commit is None:
            return h.hub_error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        path = self.store.file(rdir, commit, rel)
        if path is None:
            return h.hub_error(404, "EntryNotFound", "Entry not found", [("X-Repo-Commit", commit)])
        size, lfs, digest = self.store.info(path)
        if not lfs:
            name = rel.rsplit("/", 1)[-1]
            ctype = "application/json; charset=utf-8" if name.endswith(".json") else "text/plain; charset=utf-8"
            disp = "inline; filename*=UTF-8''%s; filename=\"%s\";" % (urllib.parse.quote(name), name.replace('"', ""))
            return h.send_file([("X-Repo-Commit", commit), ("Content-Type", ctype), ("Content-Disposition", disp)]
                               + hub_headers(), path, size, f'"{digest}"')
        expires = int(time.time()) + self.ttl
        loc = f"{self.cdn_url}/blobs/{digest}?expires={expires}&sig={self.sign(digest, expires)}"
        body = f"Found. Redirecting to {loc}".encode()
        h.reply(302, [("Location", loc), ("Content-Type", "text/plain; charset=utf-8"), ("Accept-Ranges", "bytes"),
                      ("X-Repo-Commit", commit), ("ETag", f'"{digest}"'), ("X-Linked-Etag", f'"{digest}"'),
                      ("X-Linked-Size", str(size))] + hub_headers(), body)

    def sign(self, sha, expires):
        return hmac.new(self.key, f"{sha}:{expires}".encode(), hashlib.sha256).hexdigest()

    def api(self, h, kind, rest, auth):
        # REPO is one or two segments; then nothing, revision/REV, or tree/REV[/PATH].
        one = len(rest) == 1 or (rest[1] in ("revision", "tree") and self.store.repo_dir(kind, rest[0]))
        i = 1 if one else 2
        repo, tail = "/".join(rest[:i]), rest[i:]
        if tail and not (len(tail) == 2 and tail[0] == "revision") and not (len(tail) >= 2 and tail[0] == "tree"):
            return h.hub_error(404, None, "Not Found")
        rdir = self.find_repo(h, kind, repo)
        if rdir is None or not self.gate(h, kind, repo, auth):
            return
        revision = tail[1] if tail else "main"
        commit = self.store.resolve(rdir, revision)
        if commit is None:
            return h.hub_error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        files = self.store.files(rdir, commit)
        if tail and tail[0] == "tree":
            return self.tree(h, rdir, commit, files, "/".join(tail[2:]).strip("/"))
        blobs = h.query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for rel in files:
            s = {"rfilename": rel}
            if blobs:
                size, lfs, digest = self.store.info(os.path.join(rdir, commit, *rel.split("/")))
                s.update(size=size, blobId=self.store.git_oid(size, lfs, digest))
                if lfs:
                    s["lfs"] = {"sha256": digest, "size": size, "pointerSize": 134}
            siblings.append(s)
        key = ("datasets/" if kind == "dataset" else "") + repo
        mtime = os.path.getmtime(os.path.join(rdir, commit))
        obj = {"_id": hashlib.sha1(key.encode()).hexdigest()[:24], "id": repo, "author": repo.split("/")[0],
               "sha": commit, "lastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(mtime)),
               "private": False, "gated": "manual" if key in self.gated else False, "disabled": False,
               "downloads": 0, "likes": 0, "tags": [], "siblings": siblings}
        if kind == "model":
            obj["modelId"] = repo
        h.json_reply(200, obj, hub_headers() + [("X-Repo-Commit", commit)])

    def tree(self, h, rdir, commit, files, prefix):
        recursive = h.query.get("recursive", ["false"])[0].lower() == "true"
        if prefix and not any(f.startswith(prefix + "/") for f in files):
            return h.hub_error(404, "EntryNotFound", f"{prefix} does not exist on \"{commit}\"",
                               [("X-Repo-Commit", commit)])
        base = prefix + "/" if prefix else ""
        entries, dirs = [], set()
        for rel in files:
            if not rel.startswith(base):
                continue
            sub = rel[len(base):].split("/")
            for k in range(1, len(sub)):
                d = base + "/".join(sub[:k])
                if d not in dirs and (recursive or k == 1):
                    dirs.add(d)
                    entries.append({"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(),
                                    "size": 0, "path": d})
            if len(sub) > 1 and not recursive:
                continue
            size, lfs, digest = self.store.info(os.path.join(rdir, commit, *rel.split("/")))
            e = {"type": "file", "oid": self.store.git_oid(size, lfs, digest), "size": size, "path": rel}
            if lfs:
                e["lfs"] = {"oid": digest, "size": size, "pointerSize": 134}
            entries.append(e)
        h.json_reply(200, entries, hub_headers() + [("X-Repo-Commit", commit)])


class Cdn(Server):
    kind = "cdn"

    def route(self, h, parts):
        if len(parts) != 2 or parts[0] != "blobs" or not SHA256_RE.fullmatch(parts[1]):
            return h.reply(404, [("Content-Type", "text/plain")], b"Not Found\n")
        sha = parts[1]
        try:
            expires = int(h.query.get("expires", [""])[0])
        except ValueError:
            expires = 0
        sig = h.query.get("sig", [""])[0]
        if not hmac.compare_digest(sig.encode(), self.hub.sign(sha, expires).encode()) or expires < time.time():
            return h.reply(403, [("Content-Type", "application/xml")],
                           b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
                           b"<Message>Request has expired or the signature does not match</Message></Error>\n")
        path = self.hub.store.blob(sha)
        if path is None:
            return h.reply(404, [("Content-Type", "text/plain")], b"Not Found\n")
        h.send_file([("Content-Type", "application/octet-stream"), ("Cache-Control", "public, max-age=604800")],
                    path, os.path.getsize(path), f'"{sha}"')


def open_log(path):
    return open(path, "a", encoding="utf-8") if path else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cdn-port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--token")
    ap.add_argument("--denied-token", action="append", default=[])
    ap.add_argument("--gated", action="append", default=[])
    ap.add_argument("--log")
    ap.add_argument("--cdn-log")
    ap.add_argument("--url-file")
    ap.add_argument("--ttl", type=int, default=3600)
    a = ap.parse_args()

    ctx = None
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
    scheme = "https" if ctx else "http"
    hub = testserver.listen(Hub, Handler, a.port, ctx)
    cdn = testserver.listen(Cdn, Handler, a.cdn_port, ctx)
    hub.url = f"{scheme}://127.0.0.1:{hub.server_address[1]}"
    cdn.url = f"{scheme}://127.0.0.1:{cdn.server_address[1]}"
    hub.store, hub.token, hub.denied, hub.gated = Store(a.data), a.token, set(a.denied_token), set(a.gated)
    hub.key, hub.ttl, hub.cdn_url = os.urandom(32), a.ttl, cdn.url
    cdn.hub = hub
    for srv, path in ((hub, a.log), (cdn, a.cdn_log)):
        srv.logf, srv.log_lock = open_log(path), threading.Lock()
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    testserver.write_url_file(a.url_file, f"{hub.url} {cdn.url}")
    print(f"hub {hub.url} cdn {cdn.url}", file=sys.stderr, flush=True)
    try:
        hub.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
