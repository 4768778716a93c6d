#!/usr/bin/env python3
"""Push files as the layers of one OCI manifest with the oras SDK (PyPI oras),
and print the manifest's digest (sha256:...).

    oci_push.py --registry HOST:PORT [--ca PEM] [--user NAME --password PW]
                [--config FILE:MEDIA_TYPE] [--chunk BYTES]
                REPO:TAG FILE:MEDIA_TYPE[:TITLE]...

Each layer carries the annotation org.opencontainers.image.title = TITLE
(default: FILE's basename). File paths may not contain ':'. Without
--config the config is the empty one oras writes ({}, media type
application/vnd.unknown.config.v1+json). With --user the push token (scope
repository:REPO:pull,push) is fetched up front from the realm the registry's
challenge names: oras-py keeps the first token it gets (a pull-only one, for
its first HEAD) and would not ask again for push. Files larger than --chunk
(default 64 MiB) go up in PATCH chunks of that size.
"""
import argparse
import json
import os
import sys
import tempfile

import oras.auth.utils
import oras.provider
import requests


def push_token(reg, host, repo, verify):
    r = requests.get(f"https://{host}/v2/", verify=verify, timeout=30)
    h = oras.auth.utils.parse_auth_header(r.headers.get("Www-Authenticate", ""))
    if r.status_code != 401 or not h.realm:
        return None
    params = {"scope": f"repository:{repo}:pull,push"}
    if h.service:
        params["service"] = h.service
    t = requests.get(h.realm, params=params, auth=(reg.user, reg.password), verify=verify, timeout=30)
    t.raise_for_status()
    body = t.json()
    return body.get("token") or body.get("access_token")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--registry", required=True)
    ap.add_argument("--ca")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--config")
    ap.add_argument("--chunk", type=int, default=64 << 20)
    ap.add_argument("target")
    ap.add_argument("layers", nargs="+")
    a = ap.parse_args()

    verify = a.ca or True
    reg = oras.provider.Registry(hostname=a.registry, tls_verify=verify)
    repo = a.target.rsplit(":", 1)[0] if ":" in a.target.split("/")[-1] else a.target
    if a.user:
        reg.user, reg.password = a.user, a.password
        reg.auth.set_basic_auth(a.user, a.password)
        token = push_token(reg, a.registry, repo, verify)
        if token:
            reg.auth.set_token_auth(token)

    files, annotations = [], {}
    for spec in a.layers:
        path, _, rest = spec.partition(":")
        media_type, _, title = rest.partition(":")
        if not media_type:
            sys.exit(f"oci_push.py: {spec}: FILE:MEDIA_TYPE[:TITLE] expected")
        path = os.path.abspath(path)
        files.append(f"{path}:{media_type}")
        annotations[path] = {"org.opencontainers.image.title": title or os.path.basename(path)}
    chunked = any(os.path.getsize(f.rsplit(":", 1)[0]) > a.chunk for f in files)

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(annotations, f)
        annotation_file = f.name
    try:
        kwargs = {"manifest_config": os.path.abspath(a.config.partition(":")[0]) + ":" + a.config.partition(":")[2]} \
            if a.config else {}
        r = reg.push(target=f"{a.registry}/{a.target}", files=files, disable_path_validation=True,
                     annotation_file=annotation_file, do_chunked=chunked, chunk_size=a.chunk, quiet=True, **kwargs)
    finally:
        os.unlink(annotation_file)
    digest = r.headers.get("Docker-Content-Digest")
    if r.status_code not in (200, 201) or not digest:
        sys.exit(f"oci_push.py: manifest upload answered {r.status_code}: {r.text[:300]}")
    print(digest)


if __name__ == "__main__":
    main()
