"""Faults on real processes and real file systems: a full disk under the job table and under output
folders (a small tmpfs), read-only folders (a read-only bind mount: we may run as root, whom
permission bits do not stop), and kill -9 of a real server mid-write."""
from __future__ import annotations

import contextlib
import errno
import subprocess
import time
from pathlib import Path

import pytest
from api_helpers import ServerProcess


def _mount(*args: str) -> None:
    run = subprocess.run(["mount", *args], capture_output=True, text=True)
    if run.returncode != 0:
        pytest.skip(f"this machine does not let the tests mount file systems ({run.stderr.strip() or run.returncode})")


@contextlib.contextmanager
def small_fs(folder: Path, size: str = "8m"):
    """A tmpfs of `size` at `folder`, or a skip where mounting is not allowed (not root, a container)."""
    folder.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@contextlib.contextmanager
def read_only(folder: Path):
    """`folder` bind-mounted read-only onto itself: even root cannot write there while the block runs."""
    _mount("--bind", str(folder), str(folder))
    try:
        _mount("-o", "remount,bind,ro", str(folder))
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the file system is full; returns it (delete it to free the space)."""
    filler = folder / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 16))
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def poll(check, timeout: float = 60.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {check.__doc__ or check}")
        time.sleep(every)


def health(client) -> dict:
    status, body = client.json("GET", "/v1/health")
    assert status == 200, body
    return body


# -- 2: a failed job-table write never kills a worker --------------------------------------------

def test_a_full_disk_under_the_job_table_stalls_no_worker(tmp_path):
    with small_fs(tmp_path / "fs") as fs:
        server = ServerProcess(fs)
        try:
            c = server.client()
            job = c.submit("test_sleep", {"seconds": 1.0, "steps": 2})
            c.wait(job, states=("running",), timeout=30)
            filler = fill(fs)
            body = poll(lambda: (b := health(c))["status"] == "degraded" and b)
            assert "could not be recorded" in " ".join(body["problems"]), body
            assert c.job(job)["state"] == "running", "the outcome waits until the store takes it"
            status, reply = c.json("POST", "/v1/jobs", {"kind": "test_noop"})
            assert status == 507 and reply["error"]["code"] == "OUTPUT_UNWRITABLE", reply
            filler.unlink()
            assert c.wait(job, timeout=30)["state"] == "done"
            assert c.wait(c.submit("test_sleep", {"seconds": 0.1, "steps": 1}), timeout=30)["state"] == "done"
            assert health(c)["status"] == "ok"
            assert server.proc.poll() is None
        finally:
            server.stop()
