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
    _mount("--bind", "-o", "ro", str(folder), str(folder))  # util-linux binds, then remounts the new mount read-only
    try:
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


# -- 4: a user's labels folder is never replaced ----------------------------------------------

STATS = {"name": "t", "frame_size": [512, 256], "ankle_far_y": 200.0, "ankle_close_y": 240.0, "height_far": 150.0,
         "height_close": 180.0, "hip_x": 256.0, "ankle_y": 220.0, "standing_height": 170.0, "frames_used": 10, "version": 1}
DANCE = "mediapipe_pose_segmentation_dance.mp4"



def preview_into(client, output_dir: Path) -> dict:
    from conftest import shared_clip

    return client.wait(client.submit("preview_poses", {"model": "lite", "target_stats": STATS, "output_dir": str(output_dir)},
                                     {"path": str(shared_clip(DANCE)), "frame_end": 3}), timeout=120)


def test_preview_writes_beside_a_labels_folder_it_did_not_make(tmp_path, lite_model):
    out = tmp_path / "out"
    (out / "labels").mkdir(parents=True)
    (out / "labels" / "my-notes.txt").write_text("mine")
    server = ServerProcess(tmp_path / "data")
    try:
        c = server.client()
        first = preview_into(c, out)
        assert first["state"] == "done", first
        assert (out / "labels" / "my-notes.txt").read_text() == "mine"
        assert first["result"]["frames_dir"] == str(out / "labels-2")
        second = preview_into(c, out)  # a later preview replaces its own labels, and only those
        assert second["result"]["frames_dir"] == str(out / "labels-2")
        assert sorted(p.name for p in (out / "labels-2").glob("*.png")) == ["000000.png", "000001.png", "000002.png"]
        assert (out / "labels" / "my-notes.txt").read_text() == "mine"
    finally:
        server.stop()


# -- 6: full and read-only output folders, and a full data dir --------------------------------

def test_a_full_or_read_only_disk_is_output_unwritable_not_internal(tmp_path, lite_model):
    server = ServerProcess(tmp_path / "data")
    try:
        c = server.client()
        with small_fs(tmp_path / "full", "2m") as full:
            fill(full)
            job = preview_into(c, full / "out")
            assert job["state"] == "failed" and job["error"]["code"] == "OUTPUT_UNWRITABLE", job
        frames = tmp_path / "frames-out"
        frames.mkdir()
        job_id = c.submit("test_frames", {"count": 10_000, "width": 64, "height": 64, "output_dir": str(frames)})
        c.wait(job_id, states=("running",), timeout=30)
        with read_only(frames):  # made read-only mid-job
            job = c.wait(job_id, timeout=120)
        assert job["state"] == "failed" and job["error"]["code"] == "OUTPUT_UNWRITABLE", job
        for folder in ("/proc/edn-out", "/sys/edn-out"):
            status, reply = c.json("POST", "/v1/jobs", {"kind": "test_frames", "params": {"output_dir": folder}})
            assert status == 422 and reply["error"]["field"] == "params.output_dir", reply
    finally:
        server.stop()


def test_an_upload_into_a_full_data_dir_is_507_output_unwritable(tmp_path):
    with small_fs(tmp_path / "fs", "8m") as fs:
        server = ServerProcess(fs)
        try:
            c = server.client()
            filler = fill(fs)
            status, _, data = c.request("POST", "/v1/uploads?filename=clip.mp4", body=b"\1" * (1 << 20))
            assert status == 507 and b"OUTPUT_UNWRITABLE" in data, data
            filler.unlink()
            assert list((fs / "uploads").iterdir()) == []
            assert c.json("GET", "/v1/jobs")[0] == 200 and server.proc.poll() is None
        finally:
            server.stop()


# -- 10: kill -9 leftovers are cleaned at start-up --------------------------------------------

def test_half_written_files_of_a_killed_server_are_removed_at_start_up(tmp_path):
    import http.client
    from urllib.parse import urlsplit

    data, out = tmp_path / "data", tmp_path / "out"
    out.mkdir()
    (out / ".bashrc").write_text("a user's file")
    (out / "notes.part").write_text("a user's file")
    first = ServerProcess(data)
    try:
        c = first.client()
        job_id = c.submit("test_frames", {"count": 10_000, "width": 64, "height": 64, "output_dir": str(out)})
        poll(lambda: list(out.glob(".frames.*.part")))
        url = urlsplit(first.url)
        upload = http.client.HTTPConnection(url.hostname, url.port)
        upload.putrequest("POST", "/v1/uploads?filename=clip.mp4")
        upload.putheader("Authorization", f"Bearer {first.token}")
        upload.putheader("Content-Length", str(1 << 20))
        upload.endheaders()
        upload.send(b"\1" * (1 << 16))
        poll(lambda: list((data / "uploads").glob(".*.part")))
    finally:
        first.kill()
    assert list(out.glob(".frames.*.part")) and list((data / "uploads").glob(".*.part"))
    second = ServerProcess(data)
    try:
        assert second.client().job(job_id)["state"] == "interrupted"
        assert sorted(p.name for p in out.iterdir()) == [".bashrc", "notes.part"]
        assert list((data / "uploads").iterdir()) == []
        assert "half-written by job" in second.log() and "an upload the server was receiving" in second.log()
    finally:
        second.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the thread is made to die
def test_health_names_a_worker_that_is_not_running(tmp_path):
    """Workers survive every Exception; should one die anyway (a BaseException), health says so."""
    from edn_server.service.job_contract import JobKinds
    from edn_server.service.job_table import JobStore
    from edn_server.service.workers import Scheduler

    class DyingStore(JobStore):
        def claim_next(self, heavy: bool):
            if heavy:
                raise SystemExit("the heavy worker's thread ends here")
            return super().claim_next(heavy)

    scheduler = Scheduler(DyingStore(tmp_path / "jobs.sqlite3"), JobKinds(), tmp_path, light_workers=1)
    scheduler.start()
    try:
        problems = poll(lambda: scheduler.problems(), timeout=10)
        assert problems == ["worker edn-worker-heavy is not running"], problems
    finally:
        scheduler.stop()
