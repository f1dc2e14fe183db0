"""The face rule (issue 10, item 6): at the end of training the face stage is scored on the clip's
held-out frames with and without the face refiner and kept only if it raises face SSIM; a model
marked otherwise keeps its face weights but its transfers (and evaluations) skip the refiner, and
models trained before the check still use theirs. Real training steps of the tiny preset."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared_clip
from edn_server import cli
from edn_server.config import data_dir
from edn_server.gan.dataset import TrainingData
from edn_server.gan.infer import MANIFEST, transfer
from edn_server.gan.model_io import load_trained_model
from edn_server.gan.train import train
from edn_server.registry import models_dir

CLIP = "edn_subject4_train.mp4"
FRAMES = 48  # the tiny preset holds out the last 10%: frames 43..47, each showing the face
SOURCE = (40, 44)  # the transfer's source frames: the same man, face in view


@pytest.fixture(scope="module")
def clip(pose_model_full):
    return shared_clip(CLIP)


@pytest.fixture(scope="module")
def trained(clip) -> tuple[str, str]:
    """`edn train` of a tiny full-frame model with a face stage: (its name, what it printed)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli.main(["train", str(clip), "--name", "face-checked", "--preset", "tiny", "--steps", "24", "--end", str(FRAMES),
                         "--layer", "full-frame"]) == 0
    return "face-checked", printed.getvalue()


def with_face_entry(name: str, copy: str, face: dict | None) -> str:
    """A copy of model `name` whose model.json has `face` as its "face" entry (None: no entry, as before the check)."""
    folder = models_dir(data_dir()) / copy
    shutil.copytree(models_dir(data_dir()) / name, folder)
    meta = json.loads((folder / "model.json").read_text())
    meta.pop("face", None)
    if face is not None:
        meta["face"] = face
    (folder / "model.json").write_text(json.dumps(meta))
    return copy


def test_training_records_whether_the_face_stage_raised_heldout_face_ssim(trained):
    name, printed = trained
    face = json.loads((models_dir(data_dir()) / name / "model.json").read_text())["face"]
    assert face["frames"] == 5  # every held-out frame: 43..47
    assert -1 <= face["ssim_without"] <= 1 and -1 <= face["ssim_with"] <= 1
    assert face["used"] is (face["ssim_with"] > face["ssim_without"])
    assert f"held-out face SSIM {face['ssim_without']:.3f} -> {face['ssim_with']:.3f} over 5 frames" in face["reason"]
    assert f"face stage: {'used' if face['used'] else 'not used'}: {face['reason']}" in printed
    model = load_trained_model(name)
    assert model.face_generator is not None  # the weights stay either way: training can continue them
    assert (model.face_refiner is not None) is face["used"]
    # face_check.png: real | body stage alone | face refined, for held-out frames 43, 44, 46 and 47 (32 px faces)
    picture = cv2.cvtColor(cv2.imread(str(model.folder / "face_check.png")), cv2.COLOR_BGR2RGB)
    assert picture.shape == (4 * 32 + 3 * 4, 3 * 32 + 2 * 4, 3) and "face_check.png" in model.info["files"]
    data = TrainingData(Path(model.info["dataset"]["folder"]))
    for row, frame in enumerate((43, 44, 46, 47)):
        x0, y0, side = data.boxes[frame]
        assert np.array_equal(picture[row * 36:row * 36 + 32, :32], data.frames[frame][y0:y0 + side, x0:x0 + side])


def test_a_person_mode_model_is_checked_on_its_heldout_faces_over_the_plate(clip):
    model = train(clip, "face-checked-person", preset="tiny", steps=24, end=FRAMES)
    assert model.mode == "person" and (model.folder / "face_check.png").is_file()
    face = model.info["face"]
    assert face["frames"] == 5 and face["used"] is (face["ssim_with"] > face["ssim_without"])
    assert (model.face_refiner is not None) is face["used"]


def transferred(clip, model_name: str, out, face: bool = True) -> tuple[list[np.ndarray], dict, int]:
    """(the frames, the manifest, how many times the face generator ran) of a transfer of SOURCE."""
    model = load_trained_model(model_name)
    calls = []
    model.face_generator.register_forward_hook(lambda *_: calls.append(1))
    transfer(clip, model, out, start=SOURCE[0], end=SOURCE[1], face=face, write_video=False)
    frames = [cv2.imread(str(path)) for path in sorted(out.glob("[0-9]*.png"))]
    assert len(frames) == SOURCE[1] - SOURCE[0]
    return frames, json.loads((out / MANIFEST).read_text()), len(calls)


def test_a_transfer_skips_the_face_generator_only_where_the_model_says_so(clip, trained, tmp_path):
    name, _ = trained
    unused = with_face_entry(name, "face-unused", {"used": False, "reason": "the face stage lowered held-out face SSIM"})
    used = with_face_entry(name, "face-used", {"used": True, "reason": "the face stage raised held-out face SSIM"})
    old = with_face_entry(name, "face-before-check", None)
    body, _, calls = transferred(clip, used, tmp_path / "body", face=False)  # --no-face: the body stage alone
    assert calls == 0

    frames, manifest, calls = transferred(clip, unused, tmp_path / "unused")
    assert calls == 0 and manifest["face_refined"] is False
    assert all(np.array_equal(a, b) for a, b in zip(frames, body, strict=True))

    for model_name in (used, old):
        frames, manifest, calls = transferred(clip, model_name, tmp_path / model_name)
        assert calls == len(frames) and manifest["face_refined"] is True
        for refined, plain_body in zip(frames, body, strict=True):
            changed = np.argwhere((refined != plain_body).any(axis=2))
            assert len(changed)  # the face was refined ...
            (top, left), (bottom, right) = changed.min(axis=0), changed.max(axis=0)
            assert bottom - top < 32 and right - left < 32  # ... inside one face box (32 px at 64 px high), nowhere else


def test_edn_eval_says_whether_the_face_stage_was_used(clip, trained, tmp_path, capsys):
    name, _ = trained
    unused = with_face_entry(name, "face-unused-eval", {"used": False, "reason": "the face stage lowered held-out face SSIM"})
    out = tmp_path / "metrics.json"
    assert cli.main(["eval", "--model", unused, "--video", str(clip), "-o", str(out), "--start", "43", "--end", "45"]) == 0
    assert "face stage: not used: the face stage lowered held-out face SSIM" in capsys.readouterr().out
    assert json.loads(out.read_text())["face"] == {"used": False, "reason": "the face stage lowered held-out face SSIM"}


def test_the_model_report_says_whether_transfers_use_the_face_stage(trained, tmp_path):
    from edn_server.model_report import build_report

    name, _ = trained
    unused = with_face_entry(name, "face-unused-report", {"used": False, "reason": "the face stage lowered held-out face SSIM"})
    page = build_report(unused, tmp_path / "report.html").read_text()
    assert "trained, not used: the face stage lowered held-out face SSIM" in page
    old = with_face_entry(name, "face-report-before-check", None)
    assert "trained, used" in build_report(old, tmp_path / "old.html").read_text()
