#!/usr/bin/env python3
"""A Docker token server (the registry token protocol) for tests, over https.

    token_server.py --cert PEM --key KEY --root-cert OUT [--port N]
                    [--service NAME] [--issuer NAME] [--user NAME --password PW]
                    [--anonymous-pull] [--ttl SECONDS] [--log FILE] [--url-file FILE]

GET /token?service=SERVICE&scope=repository:NAME:pull,push (scope may repeat,
or hold several space-separated scopes; none: a token with no access).
Basic auth with --user/--password (default onramp / s3cret) grants pull and
push; no Authorization header grants pull with --anonymous-pull, else 401;
wrong credentials: 401; another service: 400. Granted actions are those
asked for that the caller may have. The answer: {"token", "access_token",
"expires_in", "issued_at"}.

The token is a JWT signed ES256 by a key made at start; its header carries
x5c, a self-signed certificate for that key, which is also written to
--root-cert: the registry's `auth: token: rootcertbundle:`, so distribution
verifies the chain to a root it trusts. Claims: iss, sub, aud (the service),
exp, nbf, iat, jti and access [{"type", "name", "actions"}].

Port 0 (the default) picks a free port in 20000-31999; --url-file gets the
token URL (https://127.0.0.1:PORT/token) once it listens. Log, one line a
request:  METHOD PATH STATUS BASIC=yes|no USER=NAME|- SCOPE=SCOPE[,..]|- GRANTED=NAME:ACTIONS[;..]|-
(PATH without the query; USER is the user the request authenticated as).
"""
import argparse
import base64
import datetime
import hmac
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse

import testserver

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Signer:
    """An EC P-256 key and a self-signed certificate for it."""

    def __init__(self, issuer):
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                  key_encipherment=False, data_encipherment=False,
                                                  key_agreement=False, key_cert_sign=True, crl_sign=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.x5c = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()

    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def jwt(self, claims):
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]}
        signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
            b64url(json.dumps(claims, separators=(",", ":")).encode())
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def parse_scopes(values):
    """[(type, name, [actions])] from scope parameters."""
    out = []
    for v in values:
        for s in v.split():
            typ, _, rest = s.partition(":")
            name, _, actions = rest.rpartition(":")
            if typ and name:
                out.append((typ, name, [a for a in actions.split(",") if a]))
    return out


class Handler(testserver.QuietHandler):
    server_version = "onramp-token-test"
    timeout = 60

    def reply(self, status, obj, user, scopes, granted, headers=()):
        body = json.dumps(obj).encode()
        basic = "yes" if (self.headers.get("Authorization") or "").startswith("Basic ") else "no"
        scope = ",".join(f"{t}:{n}:{'+'.join(a)}" for t, n, a in scopes) or "-"
        grant = ";".join(f"{g['name']}:{'+'.join(g['actions'])}" for g in granted) or "-"
        line = f"{self.command} {self.path.split('?')[0]} {status} BASIC={basic} USER={user or '-'} " \
               f"SCOPE={scope} GRANTED={grant}\n"
        self.server.log(line)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        cfg = self.server.cfg
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        scopes = parse_scopes(q.get("scope", []))
        if url.path != "/token":
            return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]}, None, scopes, [])
        challenge = [("WWW-Authenticate", 'Basic realm="onramp test token server"')]
        auth = self.headers.get("Authorization")
        user = None
        if auth is not None:
            try:
                kind, _, cred = auth.partition(" ")
                u, _, p = base64.b64decode(cred.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                kind, u, p = "", "", ""
            if kind != "Basic" or not (hmac.compare_digest(u.encode(), cfg.user.encode())
                                          and hmac.compare_digest(p.encode(), cfg.password.encode())):
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]},
                                  None, scopes, [], challenge)
            user = u
            allowed = {"pull", "push"}
        elif cfg.anonymous_pull:
            allowed = {"pull"}
        else:
            return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                              None, scopes, [], challenge)
        service = q.get("service", [cfg.service])[0]
        if service != cfg.service:
            return self.reply(400, {"errors": [{"code": "DENIED", "message": f"unknown service {service}"}]},
                              user, scopes, [])
        granted = []
        for typ, name, actions in scopes:
            acts = [a for a in actions if a in allowed] if typ == "repository" else []
            if acts:
                granted.append({"type": typ, "name": name, "actions": acts})
        now = int(time.time())
        token = self.server.signer.jwt({
            "iss": cfg.issuer, "sub": user or "", "aud": cfg.service, "exp": now + cfg.ttl, "nbf": now - 60,
            "iat": now, "jti": os.urandom(16).hex(), "access": granted})
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        self.reply(200, {"token": token, "access_token": token, "expires_in": cfg.ttl, "issued_at": issued},
                   user, scopes, granted)

    do_HEAD = do_GET


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--root-cert", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--service", default="onramp-test-registry")
    ap.add_argument("--issuer", default="onramp-test-token-server")
    ap.add_argument("--user", default="onramp")
    ap.add_argument("--password", default="s3cret")
    ap.add_argument("--anonymous-pull", action="store_true")
    ap.add_argument("--ttl", type=int, default=300)
    ap.add_argument("--log")
    ap.add_argument("--url-file")
    cfg = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cfg.cert, cfg.key)
    srv = testserver.listen(testserver.Server, Handler, cfg.port, ctx)
    srv.cfg, srv.signer = cfg, Signer(cfg.issuer)
    srv.logf = open(cfg.log, "a", encoding="utf-8") if cfg.log else None
    srv.log_lock = threading.Lock()
    with open(cfg.root_cert, "wb") as f:
        f.write(srv.signer.pem())
    url = f"https://127.0.0.1:{srv.server_address[1]}/token"
    testserver.write_url_file(cfg.url_file, url)
    print(f"token server {url}", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
