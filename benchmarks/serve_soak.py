#!/usr/bin/env python
"""Soak test of ``posedistill serve`` with hostile uploads mixed in (issue 29), loopback only, bounded in count
and time.

Starts the server (``python -m posedistill serve --host 127.0.0.1 --port FREE``), then:

1. warm-up: ``--warmup`` good requests; the server's resident memory (VmRSS) after it;
2. stalled sockets (``--stalled`` of each kind: silent, request head cut short, body cut short) opened and
   watched in the background: each must be closed by the server within its timeout;
3. ``--requests`` requests from ``--clients`` threads: LSPET test photos as ``image/jpeg`` bodies, with their
   ground-truth box except every ``--no-box-every``-th request (the server localises the person; a hostile one
   takes some of those turns), and one in
   ``--bad-every`` a hostile upload (every kind the issue lists, in turn: each has an expected answer; a client
   that disconnects mid-upload gets none); VmRSS at the end;
4. a burst of ``--burst`` uploads at once of a ``--burst-side`` x ``--burst-side`` JPEG (an LSPET photo scaled
   up: a small file of many pixels), half with a box: peak VmRSS (VmHWM) during the burst.

Reports good requests answered 200 (goal: all), hostile ones answered as expected (goal: all; 4xx for every bad
input), latency, RSS after warm-up and at the end (goal: within 10 %), peak RSS of the burst (goal: under
``--ceiling-mib``), stalled sockets closed within their timeout (goal: all), and the server's open file
descriptors. Writes ``benchmarks/results/serve_soak.json``.

    python benchmarks/serve_soak.py                       # 1,000 requests, 8 clients, 5 % hostile, burst of 40
    python benchmarks/serve_soak.py --requests 80 --burst 8 --stalled 1    # smoke run
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
from scenes import joints_box, lspet_people, shared_lspet
from serve_load import HOST, free_port, rss_mib, wait_healthy

from posedistill.io import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results" / "serve_soak.json"


def proc_status(pid: int, key: str) -> float:
    """A ``/proc/PID/status`` memory line (kB) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def _png(width: int, height: int, pixels: bool = False) -> bytes:
    """A PNG declaring ``width`` x ``height`` (with real pixel data when ``pixels``)."""
    if pixels:
        return cv2.imencode(".png", np.full((height, width, 3), 127, np.uint8))[1].tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def hostile_kinds(photo: bytes, upload_limit: int) -> list[tuple[str, str, str, bytes, str, tuple[int, ...]]]:
    """(kind, path, content type, body, how to send, expected statuses) of each hostile upload."""
    boundary = "soakboundary"
    return [
        ("empty body", "/predict", "image/jpeg", b"", "post", (400,)),
        ("not an image", "/predict", "image/png", b"hello, I am not an image", "post", (400,)),
        ("truncated JPEG", "/predict", "image/jpeg", photo[: len(photo) // 2], "post", (400,)),
        ("declares 50000 x 50000", "/predict", "image/png", _png(50_000, 50_000), "post", (400,)),
        ("wrong content type", "/predict", "text/plain", photo, "post", (415,)),
        ("declares over the limit", "/predict", "image/jpeg", str(upload_limit + 1).encode(), "head only", (413,)),
        ("malformed multipart", "/predict", f"multipart/form-data; boundary={boundary}", b"--nope\r\n", "post", (400,)),
        ("box of 1e300", "/predict?bbox=0,0,1e300,1e300", "image/jpeg", photo, "post", (400,)),
        ("box outside", "/predict?bbox=5000,5000,10,10", "image/jpeg", photo, "post", (400,)),
        ("20 x 33000 PNG (handled)", "/predict", "image/png", _png(20, 33_000, pixels=True), "post", (200,)),
        ("unknown page", "/no/such/page", "image/jpeg", photo, "post", (404,)),
        ("disconnect mid-upload", "/predict", "image/jpeg", photo, "disconnect", ()),
    ]


def send(conn: http.client.HTTPConnection | None, path: str, ctype: str, body: bytes, timeout: float
         ) -> tuple[http.client.HTTPConnection | None, int, bytes, float]:
    """POST on a keep-alive connection (a new one when needed); (connection or None, status, body, ms)."""
    conn = conn or http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    start = time.perf_counter()
    conn.request("POST", path, body=body, headers={"Content-Type": ctype})
    resp = conn.getresponse()
    payload = resp.read()
    ms = (time.perf_counter() - start) * 1e3
    if resp.getheader("connection", "").lower() == "close":
        conn.close()
        conn = None
    return conn, resp.status, payload, ms


def head_only(path: str, ctype: str, declared: int, timeout: float) -> int:
    """Send a request head declaring a body of ``declared`` bytes, and no body: the status of the answer."""
    with socket.create_connection((HOST, PORT), timeout=timeout) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
                  f"Content-Length: {declared}\r\n\r\n".encode())
        return int(s.recv(4096).split(b" ", 2)[1])


def disconnect_mid_upload(photo: bytes) -> None:
    with socket.create_connection((HOST, PORT), timeout=10) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                  + f"Content-Length: {len(photo)}\r\n\r\n".encode() + photo[: len(photo) // 3])


class StalledSockets:
    """Sockets that stop sending: silent, request head cut short, body cut short; a thread records when the
    server closes each (seconds from opening)."""

    HEAD = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"
    BODY = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n"

    def __init__(self, count: int, limit_s: float) -> None:
        self.kinds = [("silent", b""), ("head", self.HEAD), ("body", self.BODY + b"\xff\xd8\xff")] * count
        self.closed: dict[int, tuple[str, float, bytes]] = {}
        self.sockets, self.start = [], time.monotonic()
        for _, payload in self.kinds:
            s = socket.create_connection((HOST, PORT), timeout=limit_s)
            s.sendall(payload)
            self.sockets.append(s)
        self.threads = [threading.Thread(target=self._watch, args=(i,), daemon=True) for i in range(len(self.kinds))]
        for t in self.threads:
            t.start()

    def _watch(self, i: int) -> None:
        got = b""
        try:
            while chunk := self.sockets[i].recv(4096):
                got += chunk
            self.closed[i] = (self.kinds[i][0], time.monotonic() - self.start, got)
        except OSError:  # not closed within the limit
            pass
        finally:
            self.sockets[i].close()

    def join(self) -> list[tuple[str, float | None, str]]:
        for t in self.threads:
            t.join()
        out = []
        for i, (kind, _) in enumerate(self.kinds):
            _, seconds, got = self.closed.get(i, (kind, None, b""))
            out.append((kind, seconds, got.split(b"\r\n")[0].decode(errors="replace")))
        return out


def big_jpeg(photo_path: Path, side: int) -> bytes:
    image = cv2.imread(str(photo_path))
    big = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


PORT = 0


def main() -> None:
    global PORT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1000, help="in all, over the clients")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--no-box-every", type=int, default=10,
                        help="requests whose number ends a run of N go without a box (unless hostile)")
    parser.add_argument("--bad-every", type=int, default=20, help="every N-th request hostile (20: 5 %%)")
    parser.add_argument("--images", type=int, default=50, help="distinct LSPET test photos")
    parser.add_argument("--burst", type=int, default=40, help="large uploads at once")
    parser.add_argument("--burst-side", type=int, default=6300)
    parser.add_argument("--stalled", type=int, default=5, help="stalled sockets of each kind")
    parser.add_argument("--ceiling-mib", type=float, default=2048.0, help="peak RSS goal of the burst")
    parser.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="whole run")
    parser.add_argument("--server-args", default="--threads 2", help="extra `posedistill serve` options")
    parser.add_argument("--header-timeout", type=float, default=10.0, help="the server's (passed to it)")
    parser.add_argument("--upload-timeout", type=float, default=30.0, help="the server's (passed to it)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    people = lspet_people(shared_lspet(), "test", args.images)
    bodies = [(p.image.read_bytes(), joints_box(p.joints, p.visible)) for p in people]
    upload_limit = 10 * 1024 * 1024
    hostile = hostile_kinds(bodies[0][0], upload_limit)
    burst_body = big_jpeg(people[0].image, args.burst_side)
    burst_box = ",".join(f"{v * args.burst_side / 100:.1f}" for v in (20, 5, 60, 90))
    PORT = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "posedistill", "serve", "--host", HOST, "--port", str(PORT),
                             "--header-timeout", str(args.header_timeout), "--upload-timeout",
                             str(args.upload_timeout), *args.server_args.split()], stderr=subprocess.PIPE, text=True)
    log_lines: list[str] = []
    threading.Thread(target=lambda: log_lines.extend(proc.stderr), daemon=True).start()
    stop_at = time.monotonic() + args.max_seconds
    lock = threading.Lock()
    try:
        wait_healthy(f"http://{HOST}:{PORT}", proc)

        def good_request(i: int) -> tuple[str, str, bytes]:
            data, box = bodies[i % len(bodies)]
            if i % args.no_box_every == args.no_box_every - 1:
                return "localised", "/predict", data
            return "box", "/predict?bbox=" + ",".join(f"{v:.1f}" for v in box), data

        def run_clients(total: int, mixed: bool) -> dict[str, list]:
            results: dict[str, list] = {}
            counter = iter(range(total))

            def client() -> None:
                conn = None
                while time.monotonic() < stop_at:
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        break
                    if mixed and i % args.bad_every == args.bad_every - 1:
                        kind, path, ctype, body, how, expect = hostile[(i // args.bad_every) % len(hostile)]
                    else:
                        (kind, path, body), ctype, how, expect = good_request(i), "image/jpeg", "post", (200,)
                    try:
                        if how == "disconnect":
                            disconnect_mid_upload(body)
                            status, ms = None, 0.0
                        elif how == "head only":
                            status, ms = head_only(path, ctype, int(body), args.timeout), 0.0
                        else:
                            conn, status, _, ms = send(conn, path, ctype, body, args.timeout)
                    except (OSError, http.client.HTTPException) as exc:
                        status, ms, conn = f"{type(exc).__name__}", 0.0, None
                    with lock:
                        results.setdefault(kind, []).append((status, ms, status in expect or not expect))
                if conn is not None:
                    conn.close()

            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return results

        run_clients(args.warmup, mixed=False)
        rss_warm, fds_warm = rss_mib(proc.pid), open_fds(proc.pid)
        stalled = StalledSockets(args.stalled, max(args.header_timeout, args.upload_timeout) + 15)
        start = time.perf_counter()
        soak = run_clients(args.requests, mixed=True)
        wall = time.perf_counter() - start
        rss_end = rss_mib(proc.pid)

        # the burst: every upload at once, peak resident memory from the kernel's high-water mark
        hwm_before = proc_status(proc.pid, "VmHWM")
        burst: list[tuple[int | str, float]] = []
        refusals: list[str] = []
        gate = threading.Barrier(args.burst)

        def upload(k: int) -> None:
            path = "/predict" + (f"?bbox={burst_box}" if k % 2 == 0 else "")
            gate.wait()
            try:
                _, status, answer, ms = send(None, path, "image/jpeg", burst_body, args.timeout)
            except (OSError, http.client.HTTPException) as exc:
                status, ms, answer = type(exc).__name__, 0.0, b""
            with lock:
                burst.append((status, ms))
                if status != 200:
                    refusals.append(f"{status}: {answer[:160].decode(errors='replace')}")

        threads = [threading.Thread(target=upload, args=(k,)) for k in range(args.burst)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        peak = proc_status(proc.pid, "VmHWM")
        rss_after_burst = rss_mib(proc.pid)
        stalls = stalled.join()
        fds_end = open_fds(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()

    good = [r for kind in ("box", "localised") for r in soak.get(kind, [])]
    bad = {k: v for k, v in soak.items() if k not in ("box", "localised")}
    lat = {k: sorted(ms for _, ms, _ in soak.get(k, [])) for k in ("box", "localised")}
    p = lambda xs, q: xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")  # noqa: E731
    limits = {"silent": args.header_timeout, "head": args.header_timeout, "body": args.upload_timeout}
    stall_ok = [s is not None and s <= limits[k] + 2 for k, s, _ in stalls]
    result = {
        "clients": args.clients, "requests": args.requests, "warmup": args.warmup, "server_args": args.server_args,
        "header_timeout_s": args.header_timeout, "upload_timeout_s": args.upload_timeout, "wall_s": wall,
        "good": len(good), "good_ok": sum(ok for _, _, ok in good),
        "good_failures": [s for s, _, ok in good if not ok][:10],
        "hostile": {k: {"sent": len(v), "as_expected": sum(ok for _, _, ok in v),
                        "statuses": sorted({str(s) for s, _, _ in v})} for k, v in bad.items()},
        "p50_ms": {k: p(v, 0.5) for k, v in lat.items()}, "p99_ms": {k: p(v, 0.99) for k, v in lat.items()},
        "rss_after_warmup_mib": rss_warm, "rss_end_mib": rss_end,
        "rss_growth": rss_end / rss_warm - 1, "burst": args.burst, "burst_side": args.burst_side,
        "burst_jpeg_bytes": len(burst_body), "burst_statuses": sorted(str(s) for s, _ in burst),
        "burst_refusals": sorted(set(refusals)),
        "peak_rss_before_burst_mib": hwm_before, "peak_rss_burst_mib": peak, "rss_after_burst_mib": rss_after_burst,
        "ceiling_mib": args.ceiling_mib,
        "stalled": [{"kind": k, "closed_after_s": s, "answer": a} for k, s, a in stalls],
        "stalled_closed_in_time": sum(stall_ok), "fds_after_warmup": fds_warm, "fds_end": fds_end,
        "server_log_lines": len(log_lines), "server_log_tracebacks": sum("Traceback" in line for line in log_lines),
    }
    print(f"{sum(map(len, soak.values()))} requests from {args.clients} clients on {HOST} "
          f"({sum(map(len, bad.values()))} hostile, {len(soak.get('localised', []))} of the {len(good)} good ones localised; server "
          f"{args.server_args}), {wall:.0f} s")
    print(f"{'requests':<26} {'sent':>5} {'as expected':>11}  answers / p50 ms / p99 ms")
    for kind in ("box", "localised"):
        rows = soak.get(kind, [])
        print(f"{'good, ' + kind:<26} {len(rows):>5} {sum(ok for _, _, ok in rows):>11}  "
              f"{p(lat[kind], 0.5):.0f} / {p(lat[kind], 0.99):.0f}")
    for kind, v in bad.items():
        print(f"{kind:<26} {len(v):>5} {sum(ok for _, _, ok in v):>11}  {', '.join(sorted({str(s) for s, _, _ in v}))}")
    print(f"RSS after warm-up {rss_warm:.0f} MiB, at the end {rss_end:.0f} MiB ({100 * result['rss_growth']:+.1f} %, "
          "goal within 10 %)")
    answers = ", ".join(f"{s} x{result['burst_statuses'].count(s)}" for s in sorted(set(result["burst_statuses"])))
    print(f"burst of {args.burst} x {args.burst_side}x{args.burst_side} JPEG ({len(burst_body) / 1e6:.1f} MB each): "
          f"answers {answers}; "
          f"peak RSS {peak:.0f} MiB (before {hwm_before:.0f}; goal under {args.ceiling_mib:.0f}), "
          f"after {rss_after_burst:.0f} MiB")
    for refusal in sorted(set(refusals)):
        print(f"  burst refusal: {refusal}")
    for kind in ("silent", "head", "body"):
        times = [s for k, s, _ in stalls if k == kind]
        answers = sorted({a for k, _, a in stalls if k == kind and a})
        print(f"stalled {kind:<6}: closed after {', '.join('never' if s is None else f'{s:.1f}' for s in times)} s "
              f"(timeout {limits[kind]:g} s){'; answered ' + ', '.join(answers) if answers else ''}")
    print(f"server fds {fds_warm} after warm-up, {fds_end} at the end; server log {len(log_lines)} lines, "
          f"{result['server_log_tracebacks']} tracebacks")
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
