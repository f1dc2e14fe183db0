"""The add-on's stdlib HTTP client against the real server (no Blender needed)."""
from __future__ import annotations

import http.server
import socket
import threading
import time
import zipfile

import pytest
from addon_helpers import pure

client_mod = pure("client")
ServerError, EdnClient = client_mod.ServerError, client_mod.EdnClient


@pytest.fixture(scope="module")
def client(edn_server):
    return EdnClient(edn_server["url"], edn_server["token"])


def _error(call) -> ServerError:
    with pytest.raises(ServerError) as info:
        call()
    return info.value


def _wait(client, job_id, timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    while (job := client.job(job_id))["state"] not in ("done", "failed", "cancelled", "interrupted"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    return job


def test_health_with_and_without_token(client, edn_server):
    full = client.health()
    assert full["status"] == "ok" and "version" in full and "preview_poses" in full["kinds"]
    anonymous = EdnClient(edn_server["url"], None).health()
    assert anonymous["status"] == "ok" and "version" not in anonymous


def test_wrong_token_says_where_the_right_one_is(edn_server):
    error = _error(lambda: EdnClient(edn_server["url"], "not-the-token").models())
    assert (error.code, error.status) == ("UNAUTHORIZED", 401)
    assert edn_server["url"] in error.message and "token" in error.message and "preferences" in error.message


def test_unreachable_server_names_the_url_and_what_to_do():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = _error(lambda: EdnClient(f"http://127.0.0.1:{port}", "t", timeout=2).health())
    assert error.code == "UNREACHABLE" and f"127.0.0.1:{port}" in error.message and "Start" in error.message


def test_a_server_that_never_answers_times_out():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts the connection in the kernel, never replies
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        errors: list[ServerError] = []
        caller = threading.Thread(target=lambda: errors.append(_error(lambda: EdnClient(url, "t", timeout=0.5).health())),
                                  daemon=True)
        caller.start()
        caller.join(5)  # a deadline for the answer, not a wait: join returns as soon as the call does
        assert errors, "the client did not give up on a server that never answers"
    assert errors[0].code == "TIMEOUT" and "0.5 s" in errors[0].message


def test_bad_url_and_foreign_server_are_explained():
    assert _error(lambda: EdnClient("127.0.0.1:8765", "t")).code == "BAD_URL"

    class NotEdn(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"<html>nope</html>")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotEdn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        error = _error(lambda: EdnClient(f"http://127.0.0.1:{server.server_port}", "t").health())
    finally:
        server.shutdown()
        server.server_close()
    assert error.code == "BAD_RESPONSE" and error.status == 404 and "edn server" in error.message


def test_server_errors_keep_code_message_and_field(client, clip24):
    error = _error(lambda: client.submit("preview_poses", {"smooth": 99, "target_stats": {}}, {"path": str(clip24)}))
    assert (error.code, error.status, error.field) == ("BAD_PARAMS", 422, "params.smooth")
    missing = _error(lambda: client.submit("extract_poses", {}, {"path": "/nonexistent/clip.mp4"}))
    assert (missing.code, missing.field) == ("MEDIA_NOT_FOUND", "input.media.path") and "/nonexistent/clip.mp4" in missing.message
    assert _error(lambda: client.job("0" * 32)).code == "NOT_FOUND"


def test_submit_poll_cancel(client):
    job_id = client.submit("test_sleep", {"seconds": 30, "steps": 300})["id"]
    client.cancel(job_id)
    assert _wait(client, job_id, 10)["state"] == "cancelled"


def test_upload_streams_with_progress(client, clip24):
    seen = []
    upload_id = client.upload(clip24, progress=lambda done, total: seen.append((done, total)))
    size = clip24.stat().st_size
    assert seen[-1] == (size, size) and len(seen) > 1 and all(a[0] < b[0] for a, b in zip(seen, seen[1:], strict=False))
    job = _wait(client, client.submit("extract_poses", {"model": "lite"}, {"upload_id": upload_id, "frame_end": 3})["id"])
    assert job["state"] == "done" and job["input"]["media"]["upload_id"] == upload_id


def test_upload_can_be_cancelled(client, clip24):
    error = _error(lambda: client.upload(clip24, cancelled=lambda: True))
    assert error.code == "CANCELLED"


def test_download_resumes_from_a_partial_file(client, tmp_path):
    job_id = client.submit("test_frames", {"count": 6, "width": 64, "height": 64})["id"]
    assert _wait(client, job_id)["state"] == "done"
    path = f"/v1/jobs/{job_id}/result/archive"
    whole = client.download(path, tmp_path / "whole.zip").read_bytes()

    half = len(whole) // 2
    (tmp_path / "resumed.zip.part").write_bytes(whole[:half])
    seen = []
    resumed = client.download(path, tmp_path / "resumed.zip", progress=lambda done, total: seen.append((done, total)))
    assert resumed.read_bytes() == whole and not (tmp_path / "resumed.zip.part").exists()
    assert seen[0][0] > half and seen[-1] == (len(whole), len(whole))  # only the missing half came over the wire

    (tmp_path / "again.zip.part").write_bytes(whole + b"x")  # longer than the file: 416, so start over
    assert client.download(path, tmp_path / "again.zip").read_bytes() == whole


def test_download_of_an_unfinished_job_is_refused(client, tmp_path):
    job_id = client.submit("test_sleep", {"seconds": 30, "steps": 300})["id"]
    try:
        error = _error(lambda: client.download(f"/v1/jobs/{job_id}/result/archive", tmp_path / "x.zip"))
        assert error.code == "NOT_READY" and not (tmp_path / "x.zip").exists()
    finally:
        client.cancel(job_id)


def test_an_image_sequence_is_packed_flat_and_a_failure_leaves_no_archive(tmp_path):
    packing = pure("packing")
    frames = tmp_path / "shot"
    frames.mkdir()
    for number in (8, 9, 10):
        (frames / f"shot_{number}.png").write_bytes(bytes([number]) * 100)
    archive = packing.pack_frames(frames, ["shot_9.png", "shot_10.png"], tmp_path / "out" / "x.zip")
    with zipfile.ZipFile(archive) as packed:
        assert packed.namelist() == ["shot_9.png", "shot_10.png"] and packed.read("shot_10.png") == bytes([10]) * 100

    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    error = _error(lambda: packing.pack_frames(frames, ["shot_8.png"], blocked / "x.zip"))
    assert error.code == "UPLOAD_FAILED" and str(blocked) in error.message and "another output folder" in error.message

    error = _error(lambda: packing.pack_frames(frames, ["shot_8.png", "gone.png"], tmp_path / "y.zip"))
    assert error.code == "UPLOAD_FAILED" and not (tmp_path / "y.zip").exists()
    error = _error(lambda: packing.pack_frames(frames, ["shot_8.png"], tmp_path / "z.zip", cancelled=lambda: True))
    assert error.code == "CANCELLED" and not (tmp_path / "z.zip").exists()


def test_an_upload_reports_its_bytes_and_a_refused_job_deletes_it(client, edn_server, tmp_path):
    packing = pure("packing")
    movie = tmp_path / "clip.mp4"
    movie.write_bytes(b"not a movie" * 40_000)
    seen = []
    with pytest.raises(ServerError) as refused:  # the server checks the media at submit: not a movie
        packing.UploadSource(movie=str(movie)).submit_job(client, "extract_poses", {}, {"path": str(movie)}, "x",
                                                          progress=lambda done, total: seen.append((done, total)))
    assert refused.value.code == "MEDIA_UNREADABLE"
    assert seen and seen[-1] == (movie.stat().st_size, movie.stat().st_size)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False)), "progress only grows"
    uploads = edn_server["data_dir"] / "uploads"
    assert not [p for p in uploads.glob("[0-9a-f]*") if (p / "clip.mp4").exists()], "the refused job's upload is gone"
