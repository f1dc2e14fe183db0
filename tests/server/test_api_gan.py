"""Training, transfer and evaluation as jobs of a real server: one tiny model trained once (on 24
frames of a real target clip) and reused; a running training's held-out sample, cancel, kill -9 +
resume, and submit-time errors."""
from __future__ import annotations

import io
import json
import os
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from api_helpers import ServerProcess
from conftest import shared_clip
from edn_server import media

TARGET = "edn_subject4_train.mp4"  # 1024x512: the tiny preset trains 128x64
DANCE = "mediapipe_pose_segmentation_dance.mp4"  # 600x600, 20 fps
MODEL = "tiny target"
TRAIN_FRAMES = 24


def _start(data_dir: Path) -> ServerProcess:
    """A server whose torch uses one thread: on a small shared CPU, torch's threads spinning against
    other processes make a tiny training step several times slower than one thread does."""
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        return ServerProcess(data_dir)
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS")
        else:
            os.environ["OMP_NUM_THREADS"] = saved


class Server:
    """The module's server; the kill -9 test replaces the process on the same data dir."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.process = _start(data_dir)

    def client(self):
        return self.process.client()

    def restart_after_kill(self) -> None:
        self.process.kill()
        self.process = _start(self.data_dir)


@pytest.fixture(scope="module")
def server(tmp_path_factory, pose_model_full):
    srv = Server(tmp_path_factory.mktemp("gan") / "data")
    yield srv
    srv.process.stop()


def _target(frame_end: int = TRAIN_FRAMES, frame_start: int = 0) -> dict:
    return {"path": str(shared_clip(TARGET)), "frame_start": frame_start, "frame_end": frame_end}


def _models(client) -> dict[str, dict]:
    status, reply = client.json("GET", "/v1/models")
    assert status == 200
    return {m["name"]: m for m in reply["models"]}


@pytest.fixture(scope="module")
def trained(server) -> dict:
    """The tiny model, trained through the API; returns the finished job with the stages it showed."""
    c = server.client()
    # full-frame, as before the person layer: this module tests the job machinery (test_person_layer.py the person mode)
    job_id = c.submit("train", {"name": MODEL, "preset": "tiny", "steps": 12, "layer": "full-frame"}, _target())
    seen, deadline = [], time.monotonic() + 180
    while (job := c.job(job_id))["state"] not in ("done", "failed", "cancelled", "interrupted") and time.monotonic() < deadline:
        seen.append((job["stage"], job["progress"]))
        time.sleep(0.02)
    assert job["state"] == "done", job
    return {**job, "seen": seen}


def test_train_registers_the_model_with_its_stats(server, trained):
    result = trained["result"]
    assert (result["model"], result["preset"], result["resolution"], result["steps"]) == (MODEL, "tiny", [128, 64], 12)
    assert result["resumed_from_step"] == 0 and result["seconds"] > 0
    assert Path(result["samples"]).is_file() and Path(result["folder"]) == server.data_dir / "models" / MODEL
    assert Path(result["heldout_sample"]).is_file() and trained["sample"] == f"/v1/jobs/{trained['id']}/sample"
    stages = {stage for stage, _ in trained["seen"]}
    assert {"detect poses", "dataset"} & stages and any(str(s).startswith("train: ") for s in stages), stages
    progress = [p for _, p in trained["seen"]]
    assert progress == sorted(progress), "overall progress never goes back when a stage starts"
    listed = _models(server.client())[MODEL]
    assert listed["info"]["steps"] == 12 and listed["info"]["resolution"] == [128, 64]
    assert result["warning"] is None and listed["warning"] is None  # 12 steps: above the tiny preset's useful floor
    assert listed["info"]["stats"]["frame_size"] == [1024, 512]  # what Preview Poses and the add-on read
    assert result["mode"] == listed["mode"] == "full-frame" and "asked for" in listed["mode_reason"]


def test_transfer_writes_the_frames_and_serves_them(server, trained, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    cv2.imwrite(str(out / "cover.png"), np.full((8, 8, 3), 255, np.uint8))  # a user's own image stays out
    c = server.client()
    params = {"model": MODEL, "normalization": {"auto": True, "scale": 1.0, "offset_x": 0.0, "offset_y": 0.0, "mirror": False},
              "smooth": 1.0, "face": True, "output_dir": str(out)}  # exactly what the add-on sends
    job = c.wait(c.submit("transfer", params, {"path": str(shared_clip(DANCE)), "frame_start": 0, "frame_end": 12}), timeout=120)
    assert job["state"] == "done", job
    result = job["result"]
    assert (result["frames_dir"], result["frame_start"], result["frames"], result["fps"]) == (str(out), 0, 12, 20.0)
    assert result["fps_generated"] > 0 and Path(result["video"]).is_file()
    names = [f"{i:06d}.png" for i in range(12)]
    for name in names:
        assert cv2.imread(str(out / name)).shape == (64, 128, 3)

    status, headers, data = c.request("GET", f"/v1/jobs/{job['id']}/result/archive")
    assert status == 200 and headers["content-type"] == "application/zip"
    archived = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert sorted(n for n in archived if n.endswith(".png")) == names, archived
    status, headers, data = c.request("GET", f"/v1/jobs/{job['id']}/result/video")
    assert status == 200 and headers["content-type"] == "video/mp4" and data[4:8] == b"ftyp"


def test_a_compiled_transfer_runs_in_the_server_worker(server, trained, tmp_path):
    c = server.client()
    job = c.wait(c.submit("transfer", {"model": MODEL, "compile": "on", "video": False, "output_dir": str(tmp_path)},
                          {"path": str(shared_clip(DANCE)), "frame_end": 4}), timeout=300)
    assert job["state"] == "done" and job["result"]["compiled"] is True, job
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [f"{i:06d}.png" for i in range(4)]
    status, reply = c.json("POST", "/v1/jobs", {"kind": "transfer", "params": {"model": MODEL, "compile": "yes"},
                                                "input": {"media": {"path": str(shared_clip(DANCE))}}})
    assert status == 422 and reply["error"]["field"] == "params.compile", reply


def test_preview_poses_takes_the_stats_of_a_model_by_name(server, trained):
    c = server.client()
    job = c.wait(c.submit("preview_poses", {"target_model": MODEL, "video": False},
                          {"path": str(shared_clip(DANCE)), "frame_end": 4}), timeout=120)
    assert job["state"] == "done", job
    assert job["result"]["size"] == [1024, 512] and job["result"]["frame_count"] == 4


def test_eval_reports_the_metrics(server, trained):
    c = server.client()
    params = {"model": MODEL, "baseline": "median,nearest", "size": [256, 128]}
    job = c.wait(c.submit("eval", params, _target(TRAIN_FRAMES + 8, TRAIN_FRAMES)), timeout=120)
    assert job["state"] == "done", job
    result = job["result"]
    for key in ("body_ssim", "body_psnr", "person_ssim", "face_ssim", "pose_distance", "missed_detections"):
        assert key in result and key in result["baseline"] and key in result["nearest_baseline"], key
    assert result["score_size"] == [256, 128] and result["resolution"] == [128, 64]
    assert result["frames"] == 8 and 0 < result["body_ssim"] <= 1 and "per_frame" not in result
    saved = json.loads(Path(result["metrics_file"]).read_text())
    assert saved["body_ssim"] == result["body_ssim"] and len(saved["per_frame"]["frame"]) == 8
    status, reply = c.json("GET", f"/v1/jobs/{job['id']}/sample")
    assert status == 404 and reply["error"]["code"] == "NOT_FOUND" and "train jobs do" in reply["error"]["message"]


def test_a_running_training_serves_its_latest_heldout_sample(server, trained):
    """An artist watches the model learn: real | label | generated on a frame it never trained on."""
    c = server.client()
    job_id = c.submit("train", {"name": "watched", "preset": "tiny", "steps": 1_000_000, "layer": "full-frame"}, _target())
    waiting = c.submit("train", {"name": "waiting", "preset": "tiny", "steps": 10}, _target())  # heavy jobs run one at a time
    status, reply = c.json("GET", f"/v1/jobs/{waiting}/sample")
    assert status == 404 and reply["error"]["code"] == "NOT_READY" and c.job(waiting)["sample"] is None, reply
    deadline = time.monotonic() + 120
    while (job := c.job(job_id))["sample"] is None:
        assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
        time.sleep(0.05)
    assert job["state"] == "running" and job["sample"] == f"/v1/jobs/{job_id}/sample", job
    status, headers, png = c.request("GET", job["sample"])
    assert status == 200 and headers["content-type"] == "image/png"
    sample = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    # 128x64 tiles (tiny preset, 2:1 clip) with 4 px gaps: one row per held-out frame, the last is frame 23,
    # which training never saw (the tiny preset holds out the clip's last 10%: frames 22 and 23 of 24)
    assert sample.shape == (2 * 64 + 4, 3 * 128 + 2 * 4, 3), sample.shape
    info = media.probe(shared_clip(TARGET))
    last = cv2.resize(next(media.iter_frames(info, TRAIN_FRAMES - 1, TRAIN_FRAMES)), (128, 64), interpolation=cv2.INTER_AREA)
    assert np.abs(sample[-64:, :128].astype(int) - last).max() <= 1
    for job_id_ in (waiting, job_id):
        assert c.json("POST", f"/v1/jobs/{job_id_}/cancel")[0] == 200
        assert c.wait(job_id_, timeout=30)["state"] == "cancelled"


def test_cancel_stops_training_within_a_step(server, trained):
    c = server.client()
    job_id = c.submit("train", {"name": "cancelled", "preset": "tiny", "steps": 1_000_000}, _target())
    job = c.wait(job_id, states=("running",), timeout=60)
    while not ((job := c.job(job_id))["stage"] or "").startswith("train:"):  # the dataset is cached: this is quick
        assert job["state"] == "running", job
        time.sleep(0.02)
    assert c.json("POST", f"/v1/jobs/{job_id}/cancel")[0] == 200
    job = c.wait(job_id, timeout=10, every=0.02)  # one step and a checkpoint; a cancel ignored runs 1e6 steps
    assert job["state"] == "cancelled", job
    assert "cancelled" not in _models(c)
    # the checkpoint stays: submitting the same training again continues it
    assert (server.data_dir / "models" / "cancelled" / "training" / "checkpoint.pt").is_file()


def test_kill_9_during_training_then_restart_resumes_from_the_checkpoint(server, trained):
    c = server.client()
    job_id = c.submit("train", {"name": "resumed", "preset": "tiny", "steps": 60}, _target())
    checkpoint = server.data_dir / "models" / "resumed" / "training" / "checkpoint.pt"
    deadline = time.monotonic() + 60
    while not checkpoint.is_file():
        assert time.monotonic() < deadline and c.job(job_id)["state"] in ("queued", "running")
        time.sleep(0.01)
    server.restart_after_kill()
    c = server.client()
    job = c.wait(job_id, timeout=120)
    assert job["state"] == "done" and job["attempts"] == 2, job
    result = job["result"]
    assert result["attempt"] == 2 and result["resumed_from_step"] >= 10 and result["steps"] == 60, result
    assert _models(c)["resumed"]["info"]["steps"] == 60 and not checkpoint.exists()


def test_an_under_trained_model_warns_everywhere_and_resume_trains_it_on(server, trained, tmp_path):
    """Too few steps: the train result, the model list and every transfer with it carry UNDER_TRAINED
    (a warning: the job is done); an explicit resume continues the finished model for more steps."""
    c = server.client()
    job = c.wait(c.submit("train", {"name": "brief", "preset": "tiny", "steps": 4}, _target()), timeout=180)
    assert job["state"] == "done" and job["result"]["warning"]["code"] == "UNDER_TRAINED", job
    assert "4 steps" in job["result"]["warning"]["message"]
    assert _models(c)["brief"]["warning"] == job["result"]["warning"]
    transfer = c.wait(c.submit("transfer", {"model": "brief", "video": False, "output_dir": str(tmp_path)},
                               {"path": str(shared_clip(DANCE)), "frame_end": 2}), timeout=120)
    assert transfer["state"] == "done" and transfer["result"]["warning"] == job["result"]["warning"], transfer

    status, reply = c.json("POST", "/v1/jobs", {"kind": "train", "params": {"name": "brief", "steps": 4}, "input": {"media": _target()}})
    assert reply["error"]["code"] == "MODEL_EXISTS" and "/v1/" not in reply["error"]["message"], reply
    status, reply = c.json("POST", "/v1/jobs", {"kind": "train", "params": {"name": "nobody", "resume": True, "steps": 4},
                                                "input": {"media": _target()}})
    assert status == 404 and reply["error"]["code"] == "MODEL_NOT_FOUND" and reply["error"]["field"] == "params.name"
    more = c.wait(c.submit("train", {"name": "brief", "resume": True, "steps": 8}, _target()), timeout=180)
    assert more["state"] == "done" and more["result"]["steps"] == 12 and more["result"]["warning"] is None, more
    assert _models(c)["brief"]["warning"] is None


def test_a_time_budgeted_training_reports_the_budget_left_as_its_eta(server, trained):
    """Extrapolating from progress overestimates early (pose detection and dataset building run at
    another pace); a time budget knows its remaining seconds, so no ETA exceeds the budget."""
    c = server.client()
    job_id = c.submit("train", {"name": "timed", "preset": "tiny", "minutes": 0.2}, _target())
    etas, deadline = [], time.monotonic() + 120
    while (job := c.job(job_id))["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        if job["eta_s"] is not None:
            etas.append((job["stage"], job["eta_s"]))
        time.sleep(0.05)
    assert job["state"] == "done", job
    assert etas and all(0 <= eta <= 12 for _, eta in etas), etas
    assert any(str(stage).startswith("train:") for stage, _ in etas), etas
    training = [eta for stage, eta in etas if str(stage).startswith("train:")]
    assert training == sorted(training, reverse=True), "the time left only shrinks"


def test_submit_errors_name_the_problem(server, trained):
    c = server.client()
    dance = {"path": str(shared_clip(DANCE)), "frame_end": 4}
    status, reply = c.json("POST", "/v1/jobs", {"kind": "transfer", "params": {"model": "nobody"}, "input": {"media": dance}})
    assert status == 404 and reply["error"]["code"] == "MODEL_NOT_FOUND" and reply["error"]["field"] == "params.model"
    assert "'nobody'" in reply["error"]["message"] and "GET /v1/models" in reply["error"]["message"]
    status, reply = c.json("POST", "/v1/jobs", {"kind": "eval", "params": {"model": "nobody"}, "input": {"media": _target()}})
    assert status == 404 and reply["error"]["code"] == "MODEL_NOT_FOUND"
    tiny_size = {"kind": "eval", "params": {"model": MODEL, "size": [512, 2]}, "input": {"media": _target()}}
    status, reply = c.json("POST", "/v1/jobs", tiny_size)
    assert status == 422 and reply["error"]["code"] == "BAD_PARAMS" and reply["error"]["field"].startswith("params.size"), reply

    def train(params):
        return c.json("POST", "/v1/jobs", {"kind": "train", "params": params, "input": {"media": _target()}})

    status, reply = train({"name": MODEL, "preset": "tiny"})
    assert status in (409, 422) and reply["error"]["code"] == "MODEL_EXISTS" and reply["error"]["field"] == "params.name"
    assert MODEL in reply["error"]["message"]
    status, reply = train({"name": "new", "preset": "best"})
    assert status == 422 and reply["error"]["field"] == "params.preset" and "'preview'" in reply["error"]["message"]
    status, reply = train({"name": "new", "steps": 10, "minutes": 1})
    assert status == 422 and "not both" in reply["error"]["message"]
    status, reply = train({"name": "new", "preset": "tiny", "steps": 1})
    assert status == 422 and reply["error"]["field"] == "params.steps"
    status, reply = train({"name": "../escape"})
    assert status == 422 and reply["error"]["field"] == "params.name"

    def transfer(params):
        return c.json("POST", "/v1/jobs", {"kind": "transfer", "params": {"model": MODEL, **params}, "input": {"media": dance}})

    status, reply = transfer({"output_height": "720"})
    assert status == 422 and reply["error"]["code"] == "BAD_PARAMS" and reply["error"]["field"] == "params.output_height"
    assert "512" in reply["error"]["message"], "names the target's own height"
    status, reply = transfer({"output": "person-alpha"})
    assert status == 422 and reply["error"]["field"] == "params.output" and "full-frame" in reply["error"]["message"]
    status, reply = transfer({"output_height": "999"})
    assert status == 422 and reply["error"]["field"] == "params.output_height"
    assert c.json("GET", "/v1/jobs?state=queued,running")[1]["jobs"] == [], "nothing was queued"
