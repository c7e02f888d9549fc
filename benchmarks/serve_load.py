#!/usr/bin/env python
"""Load test of ``posedistill serve`` on the loopback address only, bounded in count and time.

Starts the server (``python -m posedistill serve --host 127.0.0.1 --port FREE``), waits for ``/health``, then
``--clients`` threads each send ``--requests`` POST /predict requests (LSPET test photos as ``image/jpeg``
bodies, with their ground-truth box unless ``--no-box``, cycling over ``--images`` photos), each request with a
``--timeout``; the whole run stops after ``--max-seconds``. Reports requests/s, p50/p99 latency, errors (goal 0),
the batch sizes the server formed, and the server's resident memory (VmRSS) at start and end. Writes
``benchmarks/results/serve_load.json``.

    python benchmarks/serve_load.py --clients 8 --requests 50
    python benchmarks/serve_load.py --clients 2 --requests 3          # smoke run
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from posedistill.data.scenes import default_lspet_root, joints_box, lspet_people

from posedistill.io import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results" / "serve_load.json"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_healthy(url: str, proc: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("server did not become healthy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50, help="per client")
    parser.add_argument("--images", type=int, default=50, help="distinct LSPET test photos to cycle over")
    parser.add_argument("--no-box", action="store_true", help="let the server localise the person")
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="whole run")
    parser.add_argument("--server-args", default="--threads 2", help="extra `posedistill serve` options")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    people = lspet_people(default_lspet_root(), "test", args.images)
    bodies = [(p.image.read_bytes(), joints_box(p.joints, p.visible)) for p in people]
    port = free_port()
    url = f"http://{HOST}:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "posedistill", "serve", "--host", HOST, "--port", str(port),
                             *args.server_args.split()])
    try:
        wait_healthy(url, proc)
        rss_start = rss_mib(proc.pid)
        latencies: list[float] = []
        errors: list[str] = []
        batches: list[int] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + args.max_seconds

        def client(k: int) -> None:
            conn = http.client.HTTPConnection(HOST, port, timeout=args.timeout)
            for i in range(args.requests):
                if time.monotonic() > stop_at:
                    break
                data, box = bodies[(k * args.requests + i) % len(bodies)]
                path = "/predict" if args.no_box else "/predict?bbox=" + ",".join(f"{v:.1f}" for v in box)
                start = time.perf_counter()
                try:
                    conn.request("POST", path, body=data, headers={"Content-Type": "image/jpeg"})
                    resp = conn.getresponse()
                    payload = resp.read()
                    ms = (time.perf_counter() - start) * 1e3
                    with lock:
                        if resp.status == 200 and json.loads(payload):
                            latencies.append(ms)
                            batches.append(int(resp.getheader("X-Batch-Size", "1")))
                        else:
                            errors.append(f"{resp.status}: {payload[:120]!r}")
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    conn.close()
                    conn = http.client.HTTPConnection(HOST, port, timeout=args.timeout)
            conn.close()

        threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        rss_end = rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lat = sorted(latencies)
    pct = lambda q: lat[min(len(lat) - 1, int(round(q * (len(lat) - 1))))] if lat else float("nan")  # noqa: E731
    result = {"clients": args.clients, "requests_per_client": args.requests, "box": not args.no_box,
              "server_args": args.server_args, "ok": len(lat), "errors": len(errors), "error_samples": errors[:5],
              "wall_s": wall, "requests_per_s": len(lat) / wall, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
              "mean_batch": statistics.mean(batches) if batches else float("nan"),
              "rss_start_mib": rss_start, "rss_end_mib": rss_end}
    print(f"{args.clients} clients x {args.requests} requests on {HOST} ({'gt box' if not args.no_box else 'localised'}; "
          f"server {args.server_args})")
    print(f"{'ok':>5} {'errors':>6} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'batch':>6} {'RSS start':>10} "
          f"{'RSS end':>8}")
    print(f"{len(lat):>5} {len(errors):>6} {result['requests_per_s']:>7.1f} {result['p50_ms']:>8.1f} "
          f"{result['p99_ms']:>8.1f} {result['mean_batch']:>6.2f} {rss_start:>9.0f}M {rss_end:>7.0f}M")
    for e in errors[:5]:
        print("error:", e)
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
