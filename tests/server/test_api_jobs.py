"""Job lifecycles against a real server: pose extraction and label previews on real clips, cancel,
heavy-job ordering, and upload → job → resumable (Range) download."""
from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_clip

DANCE = "mediapipe_pose_segmentation_dance.mp4"  # 600x600, 102 frames, 20 fps
TARGET = "edn_subject4_train.mp4"  # 1024x512





@pytest.fixture(scope="module")
def target_poses(server, lite_model) -> Path:
    """The target subject's poses, extracted by the server itself (15 frames, lite model)."""
    c = server.client()
    job_id = c.submit("extract_poses", {"model": "lite"}, {"path": str(shared_clip(TARGET)), "frame_end": 15})
    job = c.wait(job_id)
    assert job["state"] == "done", job
    return Path(job["result"]["poses"])


def test_extract_poses_lifecycle(server, client, lite_model):
    from edn_server.pose.sequence import PoseSequence

    clip = shared_clip(DANCE)
    job_id = client.submit("extract_poses", {"model": "lite"}, {"path": str(clip), "frame_start": 5, "frame_end": 20})
    seen = {client.job(job_id)["state"]}
    job = client.job(job_id)
    while job["state"] not in ("done", "failed", "cancelled", "interrupted"):
        seen.add(job["state"])
        assert 0.0 <= job["progress"] <= 1.0
        time.sleep(0.02)
        job = client.job(job_id)
    assert job["state"] == "done", job
    assert seen <= {"queued", "running"}
    assert job["progress"] == 1.0 and job["stage"] == "detect poses" and job["error"] is None
    assert job["created"] <= job["started"] <= job["finished"]
    assert job["input"]["media"]["path"] == str(clip) and job["input"]["media"]["frames"] == 15

    result = job["result"]
    poses = PoseSequence.load(result["poses"])
    assert Path(result["poses"]).parent == server.data_dir / "jobs" / job_id
    assert len(poses) == 15 and poses.frame_start == 5 and poses.size == (600, 600) and poses.fps == pytest.approx(20)
    assert result["detected"] == int(poses.detected.sum()) >= 12
    assert "person found in" in result["report"]
    # the body is inside the frame: keypoints are pixels of the 600x600 clip
    assert 0 < float(np.median(poses.keypoints[poses.detected, :, 0])) < 600


def test_preview_poses_writes_numbered_label_frames_and_video(server, client, target_poses, tmp_path):
    import cv2

    out = tmp_path / "preview" / "run1"  # does not exist yet: created by the job
    job_id = client.submit("preview_poses", {"model": "lite", "target_poses": str(target_poses), "output_dir": str(out),
                                             "normalization": {"scale": 1.1, "offset_x": 10}},
                           {"path": str(shared_clip(DANCE)), "frame_start": 10, "frame_end": 22})
    job = client.wait(job_id)
    assert job["state"] == "done", job
    result = job["result"]
    frames = sorted((out / "labels").glob("*.png"))  # beside them only the hidden mark of a preview-made folder
    assert [f.name for f in frames] == [f"{i:06d}.png" for i in range(10, 22)]
    assert result["frames_dir"] == str(out / "labels") and result["frame_count"] == 12 and result["first_frame"] == 10
    first = cv2.imread(str(frames[0]))
    assert (first.shape[1], first.shape[0]) == (1024, 512) == tuple(result["size"]), "labels are in the target's frame"
    assert sum(int(cv2.imread(str(f)).any(axis=2).sum() > 500) for f in frames) >= 10, "most frames show a stick figure"
    assert Path(result["video"]).stat().st_size > 1000 and Path(result["video"]).parent == out
    assert not [p for p in out.rglob("*") if ".part" in p.name], "no temporary files left"


def test_preview_with_a_bad_target_file_is_refused_at_submit(client, tmp_path):
    bogus = tmp_path / "target.npz"
    bogus.write_bytes(b"no npz")
    status, reply = client.json("POST", "/v1/jobs", {"kind": "preview_poses", "params": {"target_poses": str(bogus)},
                                                     "input": {"media": {"path": str(shared_clip(DANCE))}}})
    assert status == 422 and reply["error"]["code"] == "BAD_POSE_FILE" and reply["error"]["field"] == "params.target_poses"


def test_frame_range_outside_the_clip_is_refused_at_submit(client):
    status, reply = client.json("POST", "/v1/jobs", {"kind": "extract_poses",
                                                     "input": {"media": {"path": str(shared_clip(DANCE)), "frame_end": 500}}})
    assert status == 422 and reply["error"]["code"] == "BAD_RANGE" and reply["error"]["field"] == "input.media.frame_end"
    assert "102" in reply["error"]["message"], "the message says how many frames the clip has"


def test_cancel_takes_effect_at_the_next_step(client):
    running = client.submit("test_sleep", {"seconds": 60, "steps": 600})
    job = client.wait(running, states=("running",), timeout=30)
    deadline = time.monotonic() + 10
    while job["eta_s"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
        job = client.job(running)
    assert 0 < job["progress"] < 0.5 and 30 < job["eta_s"] < 120 and job["stage"] == "sleeping" and job["eta_s"] is not None
    status, reply = client.json("POST", f"/v1/jobs/{running}/cancel")
    assert status == 200 and reply["cancel_requested"]
    job = client.wait(running, timeout=5, every=0.02)  # steps are 0.1 s; a cancel that is not honoured runs 60 s
    assert job["state"] == "cancelled" and job["error"]["code"] == "CANCELLED"


def test_cancel_a_real_preview_mid_detection_leaves_no_output(client, target_poses, tmp_path):
    out = tmp_path / "cancelled"
    job_id = client.submit("preview_poses", {"model": "lite", "target_poses": str(target_poses), "output_dir": str(out),
                                             "use_cache": False}, {"path": str(shared_clip(TARGET))})  # 800 frames:
    job = client.wait(job_id, states=("running", "done", "failed"), timeout=60)  # still detecting when cancelled
    deadline = time.monotonic() + 60
    while job["state"] == "running" and job["progress"] < 0.05 and time.monotonic() < deadline:
        job = client.job(job_id)
    assert job["state"] == "running", job
    client.json("POST", f"/v1/jobs/{job_id}/cancel")
    job = client.wait(job_id, timeout=5, every=0.02)  # detecting the rest of the 800 frames would take minutes
    assert job["state"] == "cancelled"
    assert not out.exists() or not any(out.iterdir()), "nothing half-written"


def test_cancel_of_a_queued_job_is_immediate(client):
    blocker = client.submit("test_sleep_heavy", {"seconds": 30, "steps": 300})
    queued = client.submit("test_sleep_heavy", {"seconds": 0.1, "steps": 1})
    status, reply = client.json("POST", f"/v1/jobs/{queued}/cancel")
    assert status == 200 and reply["state"] == "cancelled" and reply["started"] is None
    client.json("POST", f"/v1/jobs/{blocker}/cancel")
    assert client.wait(blocker)["state"] == "cancelled"
    assert client.job(queued)["started"] is None, "a cancelled queued job never runs"


def test_heavy_jobs_run_one_at_a_time_in_order_and_light_ones_beside(client):
    first = client.submit("test_sleep_heavy", {"seconds": 1.0, "steps": 10})
    second = client.submit("test_sleep_heavy", {"seconds": 0.3, "steps": 3})
    light = client.submit("test_sleep", {"seconds": 0.3, "steps": 3})
    jobs = {name: client.wait(job_id) for name, job_id in (("first", first), ("second", second), ("light", light))}
    assert all(job["state"] == "done" for job in jobs.values()), jobs
    assert jobs["second"]["result"]["started"] >= jobs["first"]["result"]["finished"], "heavy jobs never overlap"
    assert jobs["light"]["result"]["finished"] < jobs["first"]["result"]["finished"], "light jobs do not wait for heavy ones"


def _ranged(client, path: str, total: int, step: int) -> bytes:
    parts = []
    for start in range(0, total, step):
        end = min(start + step, total) - 1
        status, headers, data = client.request("GET", path, headers={"Range": f"bytes={start}-{end}"})
        assert status == 206 and headers["content-range"] == f"bytes {start}-{end}/{total}", (status, headers)
        parts.append(data)
    return b"".join(parts)


def test_upload_then_job_on_it_then_resumable_download(server, client, target_poses):
    from edn_server.pose.normalize import PoseStats
    from edn_server.pose.sequence import PoseSequence

    clip = shared_clip(DANCE)
    status, _, data = client.request("POST", "/v1/uploads?filename=my%20dance.mp4", body=clip.read_bytes(),
                                     headers={"Content-Type": "application/octet-stream"})
    upload = json.loads(data)
    assert status == 201 and upload["size"] == clip.stat().st_size and upload["filename"] == "my_dance.mp4"

    stats = PoseStats.from_poses(PoseSequence.load(target_poses), name="target").to_dict()
    job_id = client.submit("preview_poses", {"model": "lite", "target_stats": stats},
                           {"upload_id": upload["upload_id"], "frame_end": 10})
    job = client.wait(job_id)
    assert job["state"] == "done", job
    assert job["input"]["media"]["upload_id"] == upload["upload_id"]

    status, headers, whole = client.request("GET", f"/v1/jobs/{job_id}/result/archive")
    assert status == 200 and headers["accept-ranges"] == "bytes" and headers["content-type"] == "application/zip"
    resumed = _ranged(client, f"/v1/jobs/{job_id}/result/archive", len(whole), step=len(whole) // 3 + 1)
    assert resumed == whole
    names = zipfile.ZipFile(io.BytesIO(whole)).namelist()
    assert names == [f"{i:06d}.png" for i in range(10)]

    status, headers, video = client.request("GET", f"/v1/jobs/{job_id}/result/video")
    assert status == 200 and headers["content-type"] == "video/mp4" and len(video) > 1000
    assert _ranged(client, f"/v1/jobs/{job_id}/result/video", len(video), step=4096) == video
    status, _, _ = client.request("GET", f"/v1/jobs/{job_id}/result/video", headers={"Range": f"bytes={len(video)}-"})
    assert status == 416

    assert client.json("DELETE", f"/v1/uploads/{upload['upload_id']}")[0] == 200
    status, reply = client.json("POST", "/v1/jobs", {"kind": "extract_poses", "input": {"media": {"upload_id": upload["upload_id"]}}})
    assert status == 404 and reply["error"]["code"] == "MEDIA_NOT_FOUND"

    # once downloaded, the client frees the server's disk: the job and its files go, nothing else
    folder = server.data_dir / "jobs" / job_id
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    status, reply = client.json("DELETE", f"/v1/jobs/{job_id}")
    assert status == 200 and reply == {"deleted": job_id, "freed_bytes": size} and size > len(whole)
    assert not folder.exists() and client.json("GET", f"/v1/jobs/{job_id}")[0] == 404
    assert client.json("DELETE", f"/v1/jobs/{job_id}")[0] == 404


def test_a_job_that_has_not_ended_is_not_deleted(server, client):
    job_id = client.submit("test_sleep", {"seconds": 30, "steps": 300})
    client.wait(job_id, states=("running",), timeout=30)
    status, reply = client.json("DELETE", f"/v1/jobs/{job_id}")
    assert status == 409 and reply["error"]["code"] == "NOT_READY" and "cancel it first" in reply["error"]["message"]
    assert client.json("POST", f"/v1/jobs/{job_id}/cancel")[0] == 200
    assert client.wait(job_id, timeout=10)["state"] == "cancelled"
    assert client.json("DELETE", f"/v1/jobs/{job_id}")[0] == 200


def test_an_image_sequence_uploaded_as_a_zip_is_a_folder_of_frames(server, client, target_poses):
    """What the add-on sends for an image strip in Remote mode: the strip's frames, zipped flat."""
    import cv2
    from edn_server.media import iter_frames, probe
    from edn_server.pose.normalize import PoseStats
    from edn_server.pose.sequence import PoseSequence

    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_STORED) as archive:
        for index, frame in enumerate(iter_frames(probe(shared_clip(DANCE)), 0, 6)):
            ok, png = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            archive.writestr(f"shot_{index + 8}.png", png.tobytes())  # shot_10 sorts before shot_8 as text
    status, _, data = client.request("POST", "/v1/uploads?filename=shot.zip", body=packed.getvalue())
    upload = json.loads(data)
    assert status == 201 and upload["frames"] == 6, upload
    folder = server.data_dir / "uploads" / upload["upload_id"] / "frames"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"shot_{i}.png" for i in range(8, 14))
    assert not list(folder.parent.glob("*.zip")), "the archive is removed once unpacked"

    stats = PoseStats.from_poses(PoseSequence.load(target_poses), name="target").to_dict()
    job = client.wait(client.submit("preview_poses", {"model": "lite", "target_stats": stats},
                                    {"upload_id": upload["upload_id"], "frame_start": 1, "frame_end": 5, "fps": 20}))
    assert job["state"] == "done" and job["result"]["frame_count"] == 4, job
    names = zipfile.ZipFile(io.BytesIO(client.request("GET", f"/v1/jobs/{job['id']}/result/archive")[2])).namelist()
    assert names == [f"{i:06d}.png" for i in range(1, 5)]


def test_server_survives_a_burst_of_submits(server, client):
    ids = [client.submit("test_noop") for _ in range(30)]
    assert all(client.wait(job_id)["state"] == "done" for job_id in ids)
