#!/usr/bin/env python3
"""Cold start of `kvs-raft serve` (issue 13 item 5): exec -> first `GET /readyz` 200, on an empty data dir
and on one holding about 1 GB, and the RSS right after. Single node on loopback; each case run --runs
times, the median reported with every run. Writes a Markdown table to stdout (BENCHMARKS.md keeps it).

    python3 scripts/bench-cold-start.py --binary BIN [--runs 5] [--gb 1.0]
"""
import argparse
import base64
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path, timeout=2.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start(binary, data_dir):
    client, peer = free_port(), free_port()
    t0 = time.perf_counter()
    p = subprocess.Popen(
        [binary, "serve", "--data-dir", data_dir,
         "--listen-client", f"127.0.0.1:{client}", "--listen-peer", f"127.0.0.1:{peer}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={"RUST_LOG": "warn"})
    while True:
        if p.poll() is not None:
            raise SystemExit(f"serve exited with {p.returncode} before it was ready")
        try:
            status, _ = get(client, "/readyz", timeout=0.5)
            if status == 200:
                return p, client, (time.perf_counter() - t0) * 1000
        except OSError:
            pass
        if time.perf_counter() - t0 > 60:
            p.kill()
            raise SystemExit("not ready within 60 s")
        time.sleep(0.001)


def stop(p):
    p.terminate()
    p.wait(timeout=30)


def fill(binary, data_dir, gb):
    """Write about `gb` GB of values (16 values of 64 KiB per /v1/batch request), then stop the node."""
    p, port, _ = start(binary, data_dir)
    total, n = 0, 0
    target = int(gb * 1e9)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while total < target:
        # Incompressible values (base64 of random bytes: 64 KiB each), so the bytes reach the disk.
        ops = [{"op": "put", "key": f"player:{(n + i) % 100000}/blob{n + i}",
                "value": base64.b64encode(os.urandom(49152)).decode()} for i in range(16)]
        body = json.dumps({"ops": ops})
        conn.request("POST", "/v1/batch", body=body, headers={"content-type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"fill: /v1/batch answered {r.status}")
        n += len(ops)
        total += sum(len(op["value"]) for op in ops)
    conn.close()
    stop(p)
    return n, total


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--gb", type=float, default=1.0)
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="kvs-cold-start-")
    rows = []
    try:
        empty_ms, empty_rss = [], []
        for i in range(a.runs):
            d = os.path.join(root, f"empty{i}")
            p, _, ms = start(a.binary, d)
            empty_rss.append(rss_kib(p.pid))
            stop(p)
            empty_ms.append(ms)
        rows.append(("empty data dir", empty_ms, empty_rss))
        full = os.path.join(root, "full")
        n, written = fill(a.binary, full, a.gb)
        size = du(full)
        full_ms, full_rss = [], []
        for _ in range(a.runs):
            p, _, ms = start(a.binary, full)
            full_rss.append(rss_kib(p.pid))
            stop(p)
            full_ms.append(ms)
        rows.append((f"{size / 1e9:.2f} GB on disk ({n:,} keys, {written / 1e9:.2f} GB of values)", full_ms, full_rss))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("| data dir | exec → /readyz 200, median (all runs) | RSS after start, median |")
    print("| --- | --- | --- |")
    for name, ms, rss in rows:
        runs = ", ".join(f"{m:.0f}" for m in ms)
        print(f"| {name} | **{statistics.median(ms):.0f} ms** ({runs}) | {statistics.median(rss) / 1024:.1f} MiB |")


if __name__ == "__main__":
    sys.exit(main())
