"""Issue 10 in Blender: the sidebar's Output (Composite / Person with Alpha) and Output Height sent with
every transfer, a person-with-alpha result composited over the strips below it, each model's mode in the
Target menu, and a training's held-out sample as a thumbnail on its job row."""
from __future__ import annotations

import json
import shutil
import struct
import time
import zlib
from pathlib import Path

import pytest
from addon_helpers import TARGET_MODEL, TINY_MODEL, add_movie_strip, drive, finished, poll_message, render_frame
from test_addon_panels import draw

bpy = pytest.importorskip("bpy")

PERSON_MODEL = "subject4 person"  # the stats model marked person-mode: the server accepts Person with Alpha for it


def _record(scene, uid):
    return next(r for r in scene.edn.jobs if r.uid == uid)


def _server_job(addon, edn_server, job_id: str) -> dict:
    return addon.client.EdnClient(edn_server["url"], edn_server["token"]).job(job_id)


@pytest.fixture
def person_model(edn_server, target_model) -> str:
    """The stats-only target as a person-mode model (a model.json as training writes it): enough for
    the server to check a transfer's output against it; running one fails, as it has no weights."""
    source = edn_server["data_dir"] / "models" / TARGET_MODEL / "model.json"
    folder = edn_server["data_dir"] / "models" / PERSON_MODEL
    folder.mkdir(parents=True, exist_ok=True)
    meta = json.loads(source.read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "name": PERSON_MODEL, "mode": "person",
                                                   "layer": {"reason": "static background"}}))
    return PERSON_MODEL


def test_the_sidebar_shows_output_and_height_and_every_transfer_sends_them(addon, local_prefs, scene, clip24, edn_server,
                                                                        person_model, tmp_path):
    edn = scene.edn
    assert (edn.output_kind, edn.output_height) == ("composite", "target")  # an artist's usual case
    kinds = bpy.types.Scene.bl_rna.properties["edn"].fixed_type.properties
    assert [(i.identifier, i.name) for i in kinds["output_kind"].enum_items] == [("composite", "Composite"),
                                                                                 ("person-alpha", "Person with Alpha")]
    assert [i.name for i in kinds["output_height"].enum_items] == ["Target", "1080", "720", "512"]
    shown = [entry[1] for entry in draw(addon.panels.draw_main).log if entry[0] == "prop"]
    assert shown.index("face_refinement") < shown.index("output_kind") < shown.index("output_height") < shown.index("output_dir")

    add_movie_strip(addon, scene, clip24)
    edn.output_dir, edn.target_model = str(tmp_path / "out"), person_model
    sent = []
    for output, height in (("person-alpha", "512"), ("composite", "target")):
        edn.output_kind, edn.output_height = output, height
        assert bpy.ops.edn.transfer_motion() == {"FINISHED"}
        uid = edn.jobs[-1].uid
        assert edn.jobs[-1].output == output  # the placement reads it once the frames are there
        drive(addon, lambda: bool(_record(scene, uid).job_id), 30, "the submit")  # noqa: B023 (called at once)
        sent.append(_server_job(addon, edn_server, _record(scene, uid).job_id)["params"])
    assert [(p["output"], p["output_height"]) for p in sent] == [("person-alpha", 512), ("composite", "target")]
    uids = [r.uid for r in edn.jobs]
    drive(addon, lambda: all(finished(_record(scene, uid)) for uid in uids), 120, "the transfers")  # no weights: they fail

    # a height above the target's own (subject 4 is 512 px tall) is refused, naming the sidebar's setting
    edn.output_kind, edn.output_height = "composite", "720"
    assert bpy.ops.edn.transfer_motion() == {"FINISHED"}
    uid = edn.jobs[-1].uid
    drive(addon, lambda: finished(_record(scene, uid)), 30, "the refusal")
    refused = _record(scene, uid)
    assert (refused.state, refused.error_code) == ("not_sent", "BAD_PARAMS")
    assert "Output Height" in refused.error_message and "512" in refused.error_message


def test_the_target_menu_shows_each_models_mode_and_a_full_frame_one_refuses_alpha(addon, local_prefs, scene, clip24):
    reason = "the background moves (a moving camera or changing light)"
    addon.session.state.models = [
        {"name": "anna", "mode": "person", "mode_reason": "", "info": {"steps": 3200, "training": {"seconds": 720.0}}},
        {"name": "pan", "mode": "full-frame", "mode_reason": reason, "info": {"steps": 40, "training": {"seconds": 60.0}}}]
    addon.session.state.models_loaded = True
    listed = {i[0]: i for i in addon.properties._model_items(scene.edn, bpy.context)}
    assert listed["anna"][1] == "anna · person · 3 200 steps · 12 min"
    assert listed["pan"][1] == "pan · full-frame · 40 steps · 1 min" and reason in listed["pan"][2]

    add_movie_strip(addon, scene, clip24)
    scene.edn.target_model, scene.edn.output_kind = "pan", "person-alpha"
    message = poll_message(bpy.ops.edn.transfer_motion)
    assert "Model 'pan' is full-frame" in message and reason in message and "set Output to Composite" in message
    assert "Model 'pan' is full-frame" in draw(addon.panels.draw_main).texts()  # said in the sidebar, too
    scene.edn.output_kind = "composite"  # what it can do
    assert addon.operators.EDN_OT_transfer_motion.poll(bpy.context)
    scene.edn.target_model, scene.edn.output_kind = "anna", "person-alpha"
    assert addon.operators.EDN_OT_transfer_motion.poll(bpy.context)
    assert "full-frame" not in draw(addon.panels.draw_main).texts()


def _png_rgba(path: Path, rows: list[list[tuple[int, int, int, int]]]) -> None:
    """An 8-bit RGBA PNG, written by hand: the add-on's Pythons have no image library."""
    raw = b"".join(b"\0" + bytes(value for pixel in row for value in pixel) for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", len(rows[0]), len(rows), 8, 6, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _add_colour_strip(addon, scene, colour, length: int):
    collection = addon.strips.top_level(scene.sequence_editor)
    try:  # 5.x sizes an effect strip by its length, 4.2 by its end frame
        strip = collection.new_effect(name="backdrop", type="COLOR", channel=1, frame_start=1, length=length)
    except TypeError:
        strip = collection.new_effect(name="backdrop", type="COLOR", channel=1, frame_start=1, frame_end=1 + length)
    strip.color = colour
    return strip


def test_a_person_with_alpha_result_composites_over_the_strip_below(addon, local_prefs, scene, tmp_path):
    """RGBA frames as a person-alpha transfer writes them (transparent left half, opaque red right half),
    placed by the add-on over a blue colour strip: the render shows blue where alpha is 0, red where 1."""
    width, height, frames = 64, 32, 3
    folder = tmp_path / "person-alpha"
    folder.mkdir()
    row = [(255, 0, 0, 0)] * (width // 2) + [(255, 0, 0, 255)] * (width // 2)
    names = [f"{i:06d}.png" for i in range(frames)]
    for name in names:
        _png_rgba(folder / name, [row] * height)
    scene.render.resolution_x, scene.render.resolution_y = width, height
    backdrop = _add_colour_strip(addon, scene, (0.0, 0.0, 1.0), frames)
    record = scene.edn.jobs.add()
    record.uid, record.kind, record.state, record.output = "alpha", "transfer", "done", "person-alpha"
    record.source_strip, record.source_channel, record.timeline_start, record.target = backdrop.name, 1, 1, "anna"
    addon.result_placement.place(scene, record, str(folder), names)

    strip = addon.strips.find_strip(scene, record.result_strip)
    assert record.placed and strip.blend_type == "ALPHA_OVER"
    assert (strip.channel, strip.frame_final_start, strip.frame_final_duration) == (2, 1, frames)
    rendered = render_frame(scene, 2, tmp_path / "render.png")
    assert rendered.shape == (height, width, 3)
    left, right = rendered[:, : width // 2 - 2], rendered[:, width // 2 + 2:]
    assert abs(left - (0.0, 0.0, 1.0)).max() < 2 / 255, "where alpha is 0 the strip below shows"
    assert abs(right - (1.0, 0.0, 0.0)).max() < 2 / 255, "where alpha is 1 the person covers it"
    # a composite covers its source whole, as before; previews keep their Screen blend
    assert addon.result_placement.result_blend("transfer", "composite") is None
    assert addon.result_placement.result_blend("preview_poses", "") == "SCREEN"


def _tiny_train_job(addon, edn_server) -> str:
    """The id of the tiny_target fixture's train job (done, with its held-out sample)."""
    client = addon.client.EdnClient(edn_server["url"], edn_server["token"])
    jobs = client.request_json("GET", "/v1/jobs?kind=train&state=done")["jobs"]
    return next(j["id"] for j in jobs if j["params"]["name"] == TINY_MODEL)


def test_a_trainings_held_out_sample_becomes_a_thumbnail_on_its_job(addon, local_prefs, scene, edn_server, tiny_target,
                                                                     tmp_path):
    sample = addon.held_out_sample
    client = addon.client.EdnClient(edn_server["url"], edn_server["token"])
    job_id = _tiny_train_job(addon, edn_server)
    assert client.job(job_id)["sample"] == f"/v1/jobs/{job_id}/sample"
    shown = sample.refresh(client, "thumb", job_id, tmp_path / "cache")
    stored = tmp_path / "cache" / f"{job_id}.png"
    assert stored.read_bytes() == Path(tiny_target["heldout_sample"]).read_bytes()
    assert shown is not None and shown == sample.preview("thumb")
    assert shown.image_size[:] == _png_size(stored) and len(shown.image_pixels) > 0  # the PNG, loaded by Blender
    before = stored.stat().st_mtime_ns
    assert sample.refresh(client, "thumb", job_id, tmp_path / "cache") == shown  # unchanged on the server: not fetched again
    assert stored.stat().st_mtime_ns == before

    # the poll fetches it in the background for a train job's row, which then draws it
    record = scene.edn.jobs.add()
    record.uid, record.kind, record.job_id, record.state, record.target = "row", "train", job_id, "running", TINY_MODEL
    drive(addon, lambda: sample.preview("row") is not None and not addon.session.state.busy(), 30, "the sample")
    assert (sample.cache_dir() / f"{job_id}.png").read_bytes() == stored.read_bytes()
    layout = draw(addon.panels.draw_jobs)
    assert ("template_icon", sample.preview("row").icon_id) in layout.log and "real | pose | generated" in layout.texts()


def _png_size(path: Path) -> tuple[int, int]:
    return struct.unpack(">II", path.read_bytes()[16:24])


def test_before_the_first_sample_there_is_no_thumbnail_and_no_error(addon, local_prefs, scene, edn_server, clip24, tmp_path):
    client = addon.client.EdnClient(edn_server["url"], edn_server["token"])
    blocker, job_id = client.submit("test_sleep_heavy", {"seconds": 30, "steps": 300})["id"], None  # holds the heavy worker
    try:
        job_id = client.submit("train", {"name": "queued sample", "preset": "tiny", "steps": 2}, {"path": str(clip24)})["id"]
        assert client.job(job_id)["state"] == "queued" and client.job(job_id)["sample"] is None
        assert addon.held_out_sample.refresh(client, "early", job_id, tmp_path / "cache") is None  # the server's 404: no error
        assert addon.held_out_sample.preview("early") is None and not (tmp_path / "cache").exists()
        record = scene.edn.jobs.add()
        record.uid, record.kind, record.job_id, record.state = "early row", "train", job_id, "queued"
        track = addon.session.state.track(record.uid)
        drive(addon, lambda: track.next_poll > 0 and not addon.session.state.busy(), 30, "a poll of the queued job")
        assert (record.state, record.error_message) == ("queued", "")
        assert not any(entry[0] == "template_icon" for entry in draw(addon.panels.draw_jobs).log)
    finally:
        for job in filter(None, (blocker, job_id)):
            client.cancel(job)
        deadline = time.monotonic() + 30
        while job_id and client.job(job_id)["state"] not in ("cancelled", "done", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        shutil.rmtree(edn_server["data_dir"] / "models" / "queued sample", ignore_errors=True)
