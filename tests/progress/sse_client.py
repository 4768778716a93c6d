#!/usr/bin/env python3
"""An SSE reader of onramp's /events that hangs up at random points and
reconnects with Last-Event-ID, as a browser does.

  sse_client.py URL SEED OUT    read URL (the /events URL, with its token)
                                until the `finished` event, disconnecting
                                after a random number of events each time
                                (SEED; 0: never), and write each event's data
                                line to OUT in the order received; exit 1 on a
                                gap, a duplicate, or an id that differs from
                                the data's seq
"""

import http.client
import json
import random
import sys
import time
import urllib.parse


def read_events(url, last_id, budget):
    """One connection: yields (id, event, data) until the budget is spent
    or the stream ends."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    headers = {"Accept": "text/event-stream"}
    if last_id:
        headers["Last-Event-ID"] = str(last_id)
    conn.request("GET", u.path + "?" + u.query, headers=headers)
    resp = conn.getresponse()
    if resp.status != 200:
        raise SystemExit(f"sse_client: HTTP {resp.status}: {resp.read()[:200]!r}")
    fields = {}
    try:
        while budget != 0:
            line = resp.fp.readline()
            if not line:
                return
            line = line.decode().rstrip("\n")
            if line == "":
                if "data" in fields:
                    yield fields.get("id"), fields.get("event"), fields["data"]
                    budget -= 1
                fields = {}
            elif line.startswith(":"):
                continue
            else:
                k, _, v = line.partition(":")
                fields[k] = v[1:] if v.startswith(" ") else v
    finally:
        conn.close()


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    url, seed, out = argv[1], int(argv[2]), argv[3]
    rng = random.Random(seed)
    got, last, reconnects = [], 0, 0
    done = False
    deadline = time.time() + 300
    while not done and time.time() < deadline:
        budget = rng.randint(1, 15) if seed else -1
        for eid, kind, data in read_events(url, last, budget):
            ev = json.loads(data)
            if eid is None or int(eid) != ev["seq"]:
                print(f"sse_client: id {eid} but seq {ev['seq']}", file=sys.stderr)
                return 1
            if ev["type"] != kind:
                print(f"sse_client: event {kind} but type {ev['type']}", file=sys.stderr)
                return 1
            if last and ev["seq"] <= last:
                print(f"sse_client: seq {ev['seq']} again after {last} (a duplicate)", file=sys.stderr)
                return 1
            got.append(data)
            last = ev["seq"]
            if kind == "finished":
                done = True
                break
        if not done:
            reconnects += 1
            time.sleep(rng.random() * 0.3 if seed else 0.2)
    if not done:
        print("sse_client: no finished event within 300 s", file=sys.stderr)
        return 1
    with open(out, "w") as f:
        f.write("".join(d + "\n" for d in got))
    print(f"{len(got)} events, {reconnects} reconnects")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
