"""Numbers, sizes and archives a client controls, against a real server: non-finite or absurd
values are a 422 naming the field (and never break GET /v1/jobs), a clip's claimed frame count
allocates nothing, odd zip uploads are a 4xx, and upload names keep their extension. Property
tests cover every float field and pose-file loading."""
from __future__ import annotations

import io
import json
import math
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_clip
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DANCE = "mediapipe_pose_segmentation_dance.mp4"
STATS = {"name": "t", "frame_size": [512, 256], "ankle_far_y": 200.0, "ankle_close_y": 240.0, "height_far": 150.0,
         "height_close": 180.0, "hip_x": 256.0, "ankle_y": 220.0, "standing_height": 170.0, "frames_used": 10, "version": 1}




def post_raw(client, path: str, text: str) -> tuple[int, dict]:
    """A JSON body sent as written (1e999, NaN), not re-encoded by Python."""
    status, _, data = client.request("POST", path, body=text.encode(), headers={"Content-Type": "application/json"})
    return status, json.loads(data)


def assert_listing_works(server, client) -> None:
    assert server.proc.poll() is None, server.log()
    status, reply = client.json("GET", "/v1/jobs")
    assert status == 200, reply


def preview(media: dict | None = None, **params) -> dict:
    return {"kind": "preview_poses", "input": {"media": {"path": str(shared_clip(DANCE)), **(media or {})}},
            "params": {"target_stats": STATS, **params}}


# -- 3: NaN and infinity ----------------------------------------------------------------------

@pytest.mark.parametrize("number", ["1e999", "-1e999", "NaN", "Infinity"])
@pytest.mark.parametrize("where, field", [
    ("media.fps", "input.media.fps"),
    ("normalization.offset_x", "params.normalization.offset_x"),
    ("normalization.offset_y", "params.normalization.offset_y"),
    ("target_stats.hip_x", "params.target_stats"),
])
def test_non_finite_numbers_are_refused_and_listing_keeps_working(server, client, number, where, field):
    body = preview()
    if where == "media.fps":
        body["input"]["media"]["fps"] = "@@"
    elif where.startswith("normalization"):
        body["params"]["normalization"] = {where.split(".")[1]: "@@"}
    else:
        body["params"]["target_stats"] = {**STATS, "hip_x": "@@"}
    status, reply = post_raw(client, "/v1/jobs", json.dumps(body).replace('"@@"', number))
    assert status == 422, reply
    assert reply["error"]["code"] == "BAD_PARAMS" and reply["error"]["field"] == field, reply
    assert_listing_works(server, client)


@pytest.mark.parametrize("fps", [1e-300, 0.01, 5000.0])
def test_an_absurd_frame_rate_is_refused(server, client, fps):
    status, reply = client.json("POST", "/v1/jobs", preview({"fps": fps}))
    assert status == 422 and reply["error"]["field"] == "input.media.fps", reply


# -- 5: sizes the server would allocate from --------------------------------------------------

@pytest.mark.parametrize("size", [[200000, 200000], [0, 0], [1], [512.5, 256], "512x256", [-1, 10]])
def test_target_frame_size_is_bounded(server, client, size):
    status, reply = client.json("POST", "/v1/jobs", preview(target_stats={**STATS, "frame_size": size}))
    assert status == 422, reply
    assert reply["error"]["code"] == "BAD_PARAMS" and reply["error"]["field"] == "params.target_stats", reply
    assert_listing_works(server, client)


# -- 7: a clip's claimed frame count ----------------------------------------------------------

def lying_avi(path: Path, frames: int = 5, claimed: int = 50_000_000) -> Path:
    """A small MJPG AVI whose headers claim `claimed` frames."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 64))
    for i in range(frames):
        writer.write(np.full((64, 64, 3), 40 * i, np.uint8))
    writer.release()
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, data.find(b"avih") + 8 + 16, claimed)  # main header: total frames
    struct.pack_into("<I", data, data.find(b"strh") + 8 + 32, claimed)  # stream header: length
    path.write_bytes(bytes(data))
    return path


def test_a_clip_claiming_millions_of_frames_fails_with_a_code_not_memory(server, client, tmp_path):
    clip = lying_avi(tmp_path / "claims.avi")
    job = client.wait(client.submit("extract_poses", {"model": "lite"}, {"path": str(clip)}), timeout=120)
    assert job["state"] == "failed" and job["error"]["code"] == "MEDIA_UNREADABLE", job
    assert "frame 5" in job["error"]["message"]
    assert_listing_works(server, client)


# -- 9 and 11: uploads ------------------------------------------------------------------------

def zip_of(*members: tuple[str, bytes], flag_bits: int = 0, compress=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compress) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = compress
            archive.writestr(info, data)
    raw = bytearray(buffer.getvalue())
    if flag_bits:  # set the flag in every local and central header
        for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            at = raw.find(signature)
            while at >= 0:
                struct.pack_into("<H", raw, at + offset, struct.unpack_from("<H", raw, at + offset)[0] | flag_bits)
                at = raw.find(signature, at + 4)
    return bytes(raw)


def png() -> bytes:
    import cv2

    return cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()


def corrupt_deflate() -> bytes:
    raw = bytearray(zip_of(("000.png", png() * 20), compress=zipfile.ZIP_DEFLATED))
    start = raw.find(b"000.png") + len("000.png")
    raw[start + 10:start + 40] = b"\xff" * 30  # inside the compressed stream
    return bytes(raw)


@pytest.mark.parametrize("body, code", [
    (lambda: zip_of(("a" * 300 + ".png", png())), "BAD_PARAMS"),
    (lambda: zip_of(("000.png", png()), flag_bits=0x1), "BAD_PARAMS"),
    (corrupt_deflate, "MEDIA_UNREADABLE"),
    (lambda: b"PK\x03\x04" + b"\0" * 100, "MEDIA_UNREADABLE"),
])
def test_an_unreadable_frame_archive_is_a_4xx(server, client, body, code):
    status, _, data = client.request("POST", "/v1/uploads?filename=frames.zip", body=body())
    reply = json.loads(data)
    assert 400 <= status < 500 and reply["error"]["code"] == code, (status, reply)
    assert [p.name for p in (server.data_dir / "uploads").iterdir()] == [], "nothing is kept"
    assert_listing_works(server, client)


@pytest.mark.parametrize("filename, stored", [
    ("ダンス.zip", "upload.zip"),
    ("x" * 300 + ".zip", "x" * 116 + ".zip"),
    ("ダンス.MP4", "upload.MP4"),
    ("../../clip.mov", "clip.mov"),
])
def test_upload_names_keep_their_extension(server, client, filename, stored):
    from urllib.parse import quote

    body = zip_of(("000.png", png())) if filename.lower().endswith(".zip") else b"not really a movie"
    status, _, data = client.request("POST", f"/v1/uploads?filename={quote(filename)}", body=body)
    reply = json.loads(data)
    assert status == 201 and reply["filename"] == stored, reply
    assert ("frames" in reply) == stored.endswith(".zip"), "a zip is unpacked as an image sequence"
    client.request("DELETE", f"/v1/uploads/{reply['upload_id']}")


# -- property tests: float fields and pose files ----------------------------------------------

FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e-300, -0.0, 1e308, 5e-324])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=FLOATS, scale=FLOATS, smooth=FLOATS)
def test_any_float_in_the_preview_params_is_valid_or_a_named_422(server, client, offset, scale, smooth):
    # Params are checked before the media: a range past the clip's end keeps a valid request from running.
    body = preview({"frame_start": 100_000}, normalization={"offset_x": offset, "scale": scale}, smooth=smooth)
    status, reply = post_raw(client, "/v1/jobs", json.dumps(body))
    finite = all(math.isfinite(v) for v in (offset, scale, smooth))
    sane = finite and abs(offset) <= 100_000 and 0 < scale <= 10 and 0 <= smooth <= 10
    assert status == 422, reply
    blamed = reply["error"]["field"]
    if sane:
        assert blamed == "input.media.frame_end", reply
    else:
        assert blamed in ("params.normalization.offset_x", "params.normalization.scale", "params.smooth"), reply
    assert_listing_works(server, client)


def pose_file(path: Path, **arrays) -> Path:
    frames = 3
    data = {"keypoints": np.zeros((frames, 33, 4), np.float32), "detected": np.ones(frames, bool),
            "fps": np.float64(30), "size": np.array([64, 48], np.int32)}
    data.update(arrays)
    with open(path, "wb") as out:
        np.savez(out, **data)
    return path


ARRAYS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(np.float64),
    st.integers(-10**6, 10**6).map(np.int64),
    st.lists(st.integers(-10**6, 10**6), min_size=0, max_size=4).map(lambda v: np.array(v, np.int64)),
    st.lists(st.floats(allow_nan=True), min_size=1, max_size=3).map(lambda v: np.array(v, np.float64)),
    st.text(max_size=5).map(np.str_),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["fps", "size", "frame_start", "detected", "keypoints"]), value=ARRAYS)
def test_any_pose_file_loads_or_is_bad_pose_file(tmp_path, key, value):
    from edn_server.errors import EdnError
    from edn_server.pose.sequence import MAX_FRAME_SIDE, PoseSequence

    path = pose_file(tmp_path / "poses.npz", **{key: value})
    try:
        seq = PoseSequence.load(path)
    except EdnError as exc:
        assert exc.code == "BAD_POSE_FILE"
        return
    assert math.isfinite(seq.fps) and seq.fps > 0
    assert all(1 <= side <= MAX_FRAME_SIDE for side in seq.size)
