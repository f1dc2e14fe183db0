"""Job server benchmark against a real `edn serve` process on loopback: status polls/s and latency
with 1..200 concurrent pollers, the overhead of an empty job (submit → done), and upload / download MB/s.

    .venv/bin/python bench/server.py [--quick] [--pollers 1,10,50,200] [--seconds 3]

Writes bench/results/server.json and bench/results/server.png. Numbers only; nothing here asserts a
time. The server and the pollers share this machine's cores, so polls/s is a floor for a server
polled from another process on a bigger machine. The test-only job kinds (tests/server) provide
the empty job and the frames to download.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tests" / "server"))

from api_helpers import Client, ServerProcess  # noqa: E402

MiB = 1 << 20


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def poll_load(server: ServerProcess, job_id: str, pollers: int, seconds: float) -> dict:
    """`pollers` threads, each on its own keep-alive connection, GET the job's status as fast as answered."""
    latencies: list[list[float]] = [[] for _ in range(pollers)]
    errors: list[str] = []
    start_gate = threading.Barrier(pollers + 1)
    stop_at = [0.0]

    def poll(slot: int) -> None:
        client = server.client(timeout=30)
        try:
            client.request("GET", f"/v1/jobs/{job_id}")  # connect before the clock starts
            start_gate.wait()
            while time.perf_counter() < stop_at[0]:
                t0 = time.perf_counter()
                status, _, _ = client.request("GET", f"/v1/jobs/{job_id}")
                latencies[slot].append(time.perf_counter() - t0)
                if status != 200:
                    errors.append(str(status))
        except Exception as exc:  # counted, not raised: the benchmark reports errors
            errors.append(repr(exc))
        finally:
            client.close()

    threads = [threading.Thread(target=poll, args=(i,), daemon=True) for i in range(pollers)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + 1e9
    start_gate.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for thread in threads:
        thread.join(seconds + 60)
    elapsed = time.perf_counter() - began
    flat = [x for per in latencies for x in per]
    return {"pollers": pollers, "seconds": round(elapsed, 2), "requests": len(flat), "errors": len(errors),
            "error_samples": errors[:5], "polls_per_s": round(len(flat) / elapsed, 1),
            "latency_ms": {"p50": round(percentile(flat, 50) * 1e3, 2), "p90": round(percentile(flat, 90) * 1e3, 2),
                           "p99": round(percentile(flat, 99) * 1e3, 2), "max": round(max(flat) * 1e3, 2) if flat else None}}


def empty_job_overhead(client: Client, runs: int) -> dict:
    """Submit a job that does nothing and poll (every 2 ms) until done; the server's own timestamps
    (created → finished) leave the client's polling out."""
    from datetime import datetime

    def stamp(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    wall, server_side = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        job_id = client.submit("test_noop")
        while (job := client.job(job_id))["state"] != "done":
            time.sleep(0.002)
        wall.append(time.perf_counter() - t0)
        server_side.append(stamp(job["finished"]) - stamp(job["created"]))
    return {"runs": runs,
            "submit_to_done_ms": {"median": round(statistics.median(wall) * 1e3, 1), "p90": round(percentile(wall, 90) * 1e3, 1)},
            "created_to_finished_ms": {"median": round(statistics.median(server_side) * 1e3, 1),
                                       "p90": round(percentile(server_side, 90) * 1e3, 1)}}


def _connection(server: ServerProcess) -> http.client.HTTPConnection:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=300, blocksize=MiB)


def upload_speed(server: ServerProcess, size_mib: int, repeats: int, scratch: Path) -> dict:
    data_file = scratch / "blob.bin"
    with open(data_file, "wb") as handle:
        for _ in range(size_mib):
            handle.write(os.urandom(MiB))
    rates = []
    try:
        for _ in range(repeats):
            conn = _connection(server)
            with open(data_file, "rb") as body:
                t0 = time.perf_counter()
                conn.request("POST", "/v1/uploads?filename=blob.bin", body=body,
                             headers={"Authorization": f"Bearer {server.token}", "Content-Length": str(size_mib * MiB)})
                reply = json.loads(conn.getresponse().read())
                rates.append(size_mib / (time.perf_counter() - t0))
            conn.close()
            assert reply["size"] == size_mib * MiB, reply
            Client(server.url, server.token).request("DELETE", f"/v1/uploads/{reply['upload_id']}")
    finally:
        data_file.unlink()
    return {"size_mib": size_mib, "repeats": repeats,
            "mib_per_s": {"best": round(max(rates), 1), "median": round(statistics.median(rates), 1)}}


def _download(server: ServerProcess, path: str, byte_range: str | None = None) -> tuple[int, float]:
    conn = _connection(server)
    headers = {"Authorization": f"Bearer {server.token}"}
    if byte_range:
        headers["Range"] = byte_range
    t0 = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    assert response.status in (200, 206), response.status
    size = 0
    while chunk := response.read(MiB):
        size += len(chunk)
    elapsed = time.perf_counter() - t0
    conn.close()
    return size, elapsed


def download_speed(server: ServerProcess, client: Client, frames: int, side: int, repeats: int) -> dict:
    job_id = client.submit("test_frames", {"count": frames, "width": side, "height": side})
    assert client.wait(job_id, timeout=600)["state"] == "done"
    path = f"/v1/jobs/{job_id}/result/archive"
    size, first = _download(server, path)  # includes building the zip once
    rates = []
    for _ in range(repeats):
        got, elapsed = _download(server, path)
        assert got == size
        rates.append(size / MiB / elapsed)
    chunk = 16 * MiB
    t0 = time.perf_counter()
    for start in range(0, size, chunk):
        _download(server, path, f"bytes={start}-{min(start + chunk, size) - 1}")
    ranged = size / MiB / (time.perf_counter() - t0)
    return {"archive_mib": round(size / MiB, 1), "frames": frames, "frame_size": [side, side],
            "first_request_s_incl_zip_build": round(first, 2),
            "mib_per_s": {"best": round(max(rates), 1), "median": round(statistics.median(rates), 1)},
            "ranged_16mib_chunks_mib_per_s": round(ranged, 1)}


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loads = report["poll_load"]
    pollers = [row["pollers"] for row in loads]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    axes[0].plot(pollers, [row["polls_per_s"] for row in loads], "o-")
    axes[0].set(xscale="log", xlabel="concurrent pollers", ylabel="status polls / s", title="GET /v1/jobs/{id} throughput")
    for key, style in (("p50", "o-"), ("p99", "s--")):
        axes[1].plot(pollers, [row["latency_ms"][key] for row in loads], style, label=key)
    axes[1].set(xscale="log", yscale="log", xlabel="concurrent pollers", ylabel="latency (ms)", title="poll latency")
    axes[1].legend()
    names = ["upload", "download", "download\n(16 MiB ranges)"]
    values = [report["upload"]["mib_per_s"]["best"], report["download"]["mib_per_s"]["best"],
              report["download"]["ranged_16mib_chunks_mib_per_s"]]
    axes[2].bar(names, values, color=["#4477aa", "#66ccee", "#228833"])
    overhead = report["empty_job"]["submit_to_done_ms"]["median"]
    axes[2].set(ylabel="MiB / s (loopback)", title=f"transfer speed; empty job submit→done {overhead:.0f} ms")
    for x, v in enumerate(values):
        axes[2].text(x, v, f"{v:.0f}", ha="center", va="bottom")
    axes[2].set_ylim(0, max(values) * 1.15)
    fig.suptitle(f"edn server on {report['machine']['cpu_count']} CPU cores (server and clients share them)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer pollers levels, smaller transfers")
    parser.add_argument("--pollers", default=None, help="comma-separated poller counts (default 1,10,50,200)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per poller level (default 3)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    levels = [int(n) for n in (args.pollers or ("10,200" if args.quick else "1,10,50,200")).split(",")]
    upload_mib, frames, side = (32, 16, 512) if args.quick else (256, 64, 1024)

    load_before = os.getloadavg()
    started = time.perf_counter()
    scratch = tempfile.TemporaryDirectory(prefix="edn-bench-server-")
    server = ServerProcess(Path(scratch.name) / "data", "--max-upload", "2G")
    try:
        client = server.client()
        background = client.submit("test_sleep", {"seconds": 600, "steps": 6000})  # a running job, reporting progress
        client.wait(background, states=("running",))
        loads = []
        for n in levels:
            loads.append(poll_load(server, background, n, args.seconds))
            print(json.dumps(loads[-1]), flush=True)
        client.json("POST", f"/v1/jobs/{background}/cancel")
        client.wait(background)
        overhead = empty_job_overhead(client, 20 if args.quick else 50)
        print(json.dumps({"empty_job": overhead}), flush=True)
        upload = upload_speed(server, upload_mib, 2 if args.quick else 3, Path(scratch.name))
        print(json.dumps({"upload": upload}), flush=True)
        download = download_speed(server, client, frames, side, 2 if args.quick else 3)
        print(json.dumps({"download": download}), flush=True)
        client.close()
    finally:
        server.stop()
        scratch.cleanup()

    report = {
        "command": " ".join([".venv/bin/python", "bench/server.py", *(argv if argv is not None else sys.argv[1:])]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                    "python": platform.python_version()},
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "poll_load": loads, "empty_job": overhead, "upload": upload, "download": download,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "server.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, args.out / "server.png")
    print(f"wrote {args.out / 'server.json'} and {args.out / 'server.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
