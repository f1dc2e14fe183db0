"""Jobs are never lost: after `kill -9` a restarted server marks running jobs interrupted, re-queues
resumable ones (which continue from their checkpoint) and runs what was still queued."""
from __future__ import annotations

import json
import signal
import time

from api_helpers import ServerProcess


def test_kill_9_mid_job_then_restart(tmp_path):
    data = tmp_path / "data"
    first = ServerProcess(data)
    try:
        c = first.client()
        plain = c.submit("test_sleep", {"seconds": 60, "steps": 600})
        resumable = c.submit("test_resumable", {"steps": 30, "step_s": 0.1})
        waiting = c.submit("test_sleep_heavy", {"seconds": 0.2, "steps": 2})  # queued behind the resumable one
        c.wait(plain, states=("running",), timeout=30)
        c.wait(resumable, states=("running",), timeout=30)
        checkpoint = data / "jobs" / resumable / "checkpoint.json"
        deadline = time.monotonic() + 30
        while not (checkpoint.is_file() and json.loads(checkpoint.read_text())["step"] >= 5) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.job(waiting)["state"] == "queued"
        token = first.token
    finally:
        first.kill()  # SIGKILL: no shutdown code runs
    assert first.proc.returncode == -signal.SIGKILL
    assert json.loads((data / "server.json").read_text())["pid"] == first.proc.pid, "a killed server leaves a stale file"

    second = ServerProcess(data)
    try:
        assert second.token == token, "the token is created once and reused"
        c = second.client()
        job = c.job(plain)
        assert job["state"] == "interrupted" and job["error"]["code"] == "INTERRUPTED" and job["finished"]
        resumed = c.wait(resumable, timeout=60)
        assert resumed["state"] == "done", resumed
        assert resumed["attempts"] == 2 and resumed["result"]["attempt"] == 2 and resumed["result"]["resumed_from"] >= 5
        assert c.wait(waiting, timeout=30)["state"] == "done"
        assert c.json("GET", "/v1/jobs?state=running,queued")[1]["jobs"] == []
    finally:
        second.stop()
    assert not (data / "server.json").exists()


def test_clean_shutdown_interrupts_plain_jobs_and_requeues_resumable_ones(tmp_path):
    data = tmp_path / "data"
    first = ServerProcess(data)
    try:
        c = first.client()
        plain = c.submit("test_sleep", {"seconds": 60, "steps": 600})
        resumable = c.submit("test_resumable", {"steps": 40, "step_s": 0.1})
        c.wait(plain, states=("running",), timeout=30)
        c.wait(resumable, states=("running",), timeout=30)
        deadline = time.monotonic() + 30
        while c.job(resumable)["progress"] < 0.1 and time.monotonic() < deadline:
            time.sleep(0.05)  # a few steps checkpointed, so the second run has something to resume from
        assert c.job(resumable)["progress"] >= 0.1
    finally:
        first.stop()  # SIGTERM: jobs are asked to stop, then recorded
    second = ServerProcess(data)
    try:
        c = second.client()
        assert c.job(plain)["state"] == "interrupted"
        job = c.wait(resumable, timeout=60)
        assert job["state"] == "done" and job["result"]["resumed_from"] > 0
    finally:
        second.stop()
