"""The job server's contract against a real `edn serve` process: auth, Host check, limits,
validation errors that name the field, the model registry, and many pollers at once."""
from __future__ import annotations

import io
import json
import signal
import stat
import threading
import time
import zipfile

import pytest
from api_helpers import Client, ServerProcess

UPLOAD_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("api") / "data", "--max-upload", str(UPLOAD_LIMIT))
    yield srv
    assert srv.stop() in (0, -signal.SIGTERM), srv.log()
    assert not (srv.data_dir / "server.json").exists(), "a clean shutdown removes the discovery file"



def test_discovery_file_and_token_file(server):
    info = server.info
    assert info["url"].startswith("http://127.0.0.1:") and info["api_version"] == "1" and info["version"]
    assert info["pid"] == server.proc.pid
    token_file = server.data_dir / "token"
    assert info["token_file"] == str(token_file)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert len(server.token) >= 32


def test_health_is_minimal_without_token_and_detailed_with_it(server, client):
    status, body = server.client(token=None).json("GET", "/v1/health")
    assert status == 200 and body == {"status": "ok", "api_version": "1"}
    status, body = client.json("GET", "/v1/health")
    assert status == 200
    assert body["version"] == server.info["version"] and body["device"]["type"] in ("cpu", "cuda", "detecting")
    deadline = time.monotonic() + 60
    while body["device"]["type"] == "detecting" and time.monotonic() < deadline:
        time.sleep(0.2)
        body = client.json("GET", "/v1/health")[1]
    assert body["device"]["type"] in ("cpu", "cuda") and body["device"]["torch"]
    assert body["memory"]["process_rss"] > 0 and "extract_poses" in body["kinds"]


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_every_other_route_needs_the_token(server, token):
    c = server.client(token=token)
    for method, path in [("GET", "/v1/jobs"), ("GET", "/v1/models"), ("POST", "/v1/jobs"), ("GET", "/openapi.json"),
                         ("GET", "/v1/jobs/abc"), ("POST", "/v1/uploads")]:
        status, headers, data = c.request(method, path, body=b"{}")
        assert status == 401, (method, path, status)
        assert json.loads(data)["error"]["code"] == "UNAUTHORIZED"
        assert headers["www-authenticate"] == "Bearer"
    if token is not None:  # a wrong token is refused even where no token is needed: the client learns it is stale
        assert c.request("GET", "/v1/health")[0] == 401


def test_foreign_host_header_is_refused(server):
    port = server.url.rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1:1"):
        status, body = server.client(host_header=host).json("GET", "/v1/health")
        assert status == 421 and body["error"]["code"] == "HOST_NOT_ALLOWED", host
    assert server.client(host_header=f"localhost:{port}").json("GET", "/v1/health")[0] == 200


def test_openapi_docs_are_served_with_the_token(client):
    status, schema = client.json("GET", "/openapi.json")
    assert status == 200 and "/v1/jobs" in schema["paths"] and "/v1/uploads" in schema["paths"]
    assert client.request("GET", "/docs")[0] == 200


def test_bad_parameter_is_422_naming_the_field(server, client):
    clip = str(server.data_dir)  # never read: params are checked first
    cases = [
        ({"kind": "extract_poses", "input": {"media": {"path": clip}}, "params": {"model": "huge"}}, "params.model"),
        ({"kind": "test_sleep", "params": {"seconds": -1}}, "params.seconds"),
        ({"kind": "test_sleep", "params": {"sceonds": 1}}, "params.sceonds"),
        ({"kind": "no_such_kind"}, "kind"),
        ({"kind": "extract_poses"}, "input.media"),
        ({"kind": "extract_poses", "input": {"media": {"path": "relative.mp4"}}}, "input.media.path"),
        ({"kind": "extract_poses", "input": {"media": {"path": "/x.mp4", "frame_start": -1}}}, "input.media.frame_start"),
        ({"kind": "extract_poses", "input": {"media": {"path": clip}}, "params": {"output_dir": "out"}}, "params.output_dir"),
        ({"kind": "preview_poses", "input": {"media": {"path": clip}}, "params": {}}, "params"),
        ({"kind": "test_sleep", "extra": 1}, "extra"),
    ]
    for body, field in cases:
        status, reply = client.json("POST", "/v1/jobs", body)
        assert status == 422, (body, status, reply)
        assert reply["error"]["code"] == "BAD_PARAMS", reply
        assert reply["error"]["field"] == field, (body, reply)
        assert reply["error"]["message"]
    status, reply = client.json("GET", "/v1/jobs?state=bogus")
    assert status == 422 and reply["error"]["field"] == "state"


def test_missing_or_unreadable_media_answered_at_submit(server, client, tmp_path):
    status, reply = client.json("POST", "/v1/jobs", {"kind": "extract_poses", "input": {"media": {"path": "/no/such/clip.mp4"}}})
    assert status == 404 and reply["error"]["code"] == "MEDIA_NOT_FOUND" and reply["error"]["field"] == "input.media.path"
    assert "/no/such/clip.mp4" in reply["error"]["message"]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    status, reply = client.json("POST", "/v1/jobs", {"kind": "extract_poses", "input": {"media": {"path": str(broken)}}})
    assert status == 422 and reply["error"]["code"] == "MEDIA_UNREADABLE"
    status, reply = client.json("POST", "/v1/jobs", {"kind": "extract_poses", "input": {"media": {"upload_id": "0" * 32}}})
    assert status == 404 and reply["error"]["field"] == "input.media.upload_id"
    assert client.json("GET", "/v1/jobs?kind=extract_poses")[1]["jobs"] == [], "nothing was queued"


def test_gan_kinds_name_their_missing_parameter(client):
    for kind, field in (("train", "params.name"), ("transfer", "params.model"), ("eval", "params.model")):
        status, reply = client.json("POST", "/v1/jobs", {"kind": kind, "params": {}})
        assert status == 422 and reply["error"]["code"] == "BAD_PARAMS" and reply["error"]["field"] == field, reply


def test_oversized_upload_and_json_body_are_413(server, client):
    status, _, data = client.request("POST", "/v1/uploads?filename=big.mp4", body=b"x" * (UPLOAD_LIMIT + 1))
    assert status == 413 and json.loads(data)["error"]["code"] == "TOO_LARGE"
    status, reply = client.json("POST", "/v1/jobs", {"kind": "test_sleep", "params": {"pad": "x" * (1 << 20)}})
    assert status == 413 and reply["error"]["code"] == "TOO_LARGE"
    # chunked: no Content-Length to refuse up front, so the limit is counted while streaming
    chunks = iter([b"y" * 16384] * (UPLOAD_LIMIT // 16384 + 2))
    status, _, data = client.request("POST", "/v1/uploads?filename=big.mp4", body=chunks)
    assert status == 413, data
    assert not [p for p in (server.data_dir / "uploads").glob("*") if not p.name.startswith(".")], "no partial upload kept"
    status, _, data = client.request("POST", "/v1/uploads?filename=../../small.bin", body=b"abc")
    reply = json.loads(data)
    assert status == 201 and reply["filename"] == "small.bin" and reply["size"] == 3
    assert (server.data_dir / "uploads" / reply["upload_id"] / "small.bin").read_bytes() == b"abc"
    status, _, data = client.request("POST", "/v1/uploads?filename=empty.mp4", body=b"")
    assert status == 422 and json.loads(data)["error"]["code"] == "BAD_PARAMS"


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return packed.getvalue()


@pytest.mark.parametrize(("body", "status", "code", "words"), [
    (_zip({"../escape.png": b"x"}), 422, "BAD_PARAMS", "without folders"),
    (_zip({"frames/0001.png": b"x"}), 422, "BAD_PARAMS", "at its top"),
    (_zip({"0001.png": b"x", "notes.txt": b"x"}), 422, "BAD_PARAMS", "'notes.txt'"),
    (_zip({}), 422, "NO_FRAMES", "holds no images"),
    (b"PK\x03\x04 not really a zip", 422, "MEDIA_UNREADABLE", "not a readable zip"),
    # 4 MiB of zeros deflate to a few KiB: refused from the archive's directory, before unpacking
    (_zip({"0001.png": bytes(UPLOAD_LIMIT * 64)}, zipfile.ZIP_DEFLATED), 413, "TOO_LARGE", "unpacks to"),
])
def test_a_bad_frame_archive_is_refused_and_nothing_is_kept(server, client, body, status, code, words):
    assert len(body) < UPLOAD_LIMIT
    before = set((server.data_dir / "uploads").glob("*"))
    got, _, data = client.request("POST", "/v1/uploads?filename=shot.zip", body=body)
    error = json.loads(data)["error"]
    assert (got, error["code"]) == (status, code) and words in error["message"], error
    assert set((server.data_dir / "uploads").glob("*")) == before, "a refused archive leaves nothing behind"


def test_unknown_job_is_404_and_failures_keep_their_code(client):
    status, reply = client.json("GET", "/v1/jobs/nope")
    assert status == 404 and reply["error"]["code"] == "NOT_FOUND"
    failing = client.submit("test_sleep", {"seconds": 0, "steps": 1, "fail_with": "NO_PERSON"})
    oom = client.submit("test_sleep", {"seconds": 0, "steps": 1, "fail_with": "MemoryError"})
    job = client.wait(failing)
    assert job["state"] == "failed" and job["error"]["code"] == "NO_PERSON" and job["result"] is None
    job = client.wait(oom)
    assert job["state"] == "failed" and job["error"]["code"] == "OUT_OF_MEMORY"
    status, reply = client.json("GET", f"/v1/jobs/{failing}/result/archive")
    assert status == 409 and reply["error"]["code"] == "NOT_READY"


def test_list_jobs_newest_first_with_state_filter(client):
    ids = [client.submit("test_noop") for _ in range(3)]
    for job_id in ids:
        client.wait(job_id)
    status, reply = client.json("GET", "/v1/jobs?state=done&kind=test_noop&limit=3")
    assert status == 200 and [j["id"] for j in reply["jobs"]] == ids[::-1]
    assert all(j["state"] == "done" and j["progress"] == 1 for j in reply["jobs"])
    assert client.json("GET", "/v1/jobs?state=running,queued&kind=test_noop")[1]["jobs"] == []


def test_model_registry_lists_and_deletes(server, client):
    models = server.data_dir / "models"
    (models / "alice").mkdir(parents=True)
    (models / "alice" / "model.json").write_text(json.dumps({"frames": 800}))
    (models / "not_a_model").mkdir()
    status, reply = client.json("GET", "/v1/models")
    assert status == 200 and [m["name"] for m in reply["models"]] == ["alice"]
    assert reply["models"][0]["info"] == {"frames": 800}
    assert client.json("DELETE", "/v1/models/alice") == (200, {"deleted": "alice"})
    assert not (models / "alice").exists()
    status, reply = client.json("DELETE", "/v1/models/alice")
    assert status == 404 and reply["error"]["code"] == "MODEL_NOT_FOUND"
    assert client.json("DELETE", "/v1/models/..")[0] in (404, 422)


def test_second_server_on_the_same_data_dir_is_refused(server):
    with pytest.raises(AssertionError, match="SERVER_RUNNING"):
        ServerProcess(server.data_dir, timeout=30)
    assert json.loads((server.data_dir / "server.json").read_text())["pid"] == server.proc.pid


def test_200_concurrent_pollers_see_no_errors(server, client):
    job_id = client.submit("test_sleep", {"seconds": 4, "steps": 40})
    stop_at = time.monotonic() + 3.0
    errors: list[str] = []
    counts = [0] * 200

    def poll(slot: int) -> None:
        c = server.client(timeout=20)
        try:
            while time.monotonic() < stop_at:
                status, _, data = c.request("GET", f"/v1/jobs/{job_id}")
                if status != 200 or json.loads(data)["id"] != job_id:
                    errors.append(f"{status} {data[:200]!r}")
                counts[slot] += 1
        except Exception as exc:  # any exception is an error the test reports
            errors.append(repr(exc))
        finally:
            c.close()

    threads = [threading.Thread(target=poll, args=(i,), daemon=True) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert errors == [], errors[:5]
    assert all(counts), "every poller got answers"
    assert sum(counts) > 200
    assert client.wait(job_id)["state"] == "done"


def test_unknown_route_uses_the_error_body(client: Client):
    status, reply = client.json("GET", "/v1/nothing")
    assert status == 404 and reply["error"]["code"] == "NOT_FOUND"


def test_allowed_hosts_for_other_bind_addresses():
    from edn_server.service.guard import allowed_hosts

    local = allowed_hosts("127.0.0.1", 8000)
    assert local == {"127.0.0.1:8000", "localhost:8000", "[::1]:8000"}
    lan = allowed_hosts("0.0.0.0", 8000, ("Studio-PC", "render.example:443", "[fe80::1]"))
    assert {"studio-pc:8000", "render.example:443", "[fe80::1]:8000", "127.0.0.1:8000"} <= lan
    assert "0.0.0.0:8000" not in lan and "studio-pc:443" not in lan
    assert "192.168.1.5:8000" in allowed_hosts("192.168.1.5", 8000)
