"""The person layer end to end on real footage: MediaPipe's person masks from target extraction,
the plate and mode a training run chooses, a tiny person-mode model trained by `train`, and its
transfers (composite over the plate, RGBA person with alpha); a panning camera trains full-frame;
a model from before the person layer still transfers full-frame."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import shared_clip
from edn_server import media, registry
from edn_server.config import data_dir
from edn_server.errors import BAD_PARAMS, EdnError
from edn_server.gan.infer import transfer
from edn_server.gan.train import train
from edn_server.person.plate import FULL_FRAME, PERSON, person_region
from edn_server.person.target import choose_layer
from edn_server.pose.landmarks import LEFT_HIP, LEFT_SHOULDER, RIGHT_HIP, RIGHT_SHOULDER
from edn_server.pose.pipeline import pose_sequence
from edn_server.pose.sequence import PoseSequence
from transfer_helpers import save_tiny_model

TARGET = "edn_subject4_train.mp4"  # 1024x512, static studio camera
TRAIN_END, HELD_OUT = 720, range(720, 800, 8)
TORSO = [LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP]


@pytest.fixture(scope="module")
def subject4(pose_model_full) -> PoseSequence:
    """Subject 4's poses with MediaPipe's person masks, every frame of the clip (one detection pass)."""
    return pose_sequence(shared_clip(TARGET), 0, 800, masks=True)


def test_target_extraction_keeps_small_person_masks_and_sources_do_not(subject4):
    assert subject4.masks is not None and subject4.masks.dtype == np.uint8
    assert subject4.masks.shape == (800, 128, 256)  # the long side at most 256, the frame's aspect
    covered = (subject4.masks > 127).mean(axis=(1, 2))
    assert np.median(covered[subject4.detected]) > 0.02, "the person shows in the masks"
    assert pose_sequence(shared_clip(TARGET), 0, 4).masks is None, "source extraction stays mask-free"


def test_the_plate_from_real_masks_matches_held_out_background(subject4):
    training = PoseSequence(subject4.keypoints[:TRAIN_END], subject4.detected[:TRAIN_END], subject4.fps, subject4.size,
                            subject4.interpolated[:TRAIN_END], masks=subject4.masks[:TRAIN_END])
    layer = choose_layer(shared_clip(TARGET), 0, training)
    assert layer.mode == PERSON, layer.reason
    info = media.probe(shared_clip(TARGET))
    for i, frame in enumerate(media.iter_frames(info, HELD_OUT.start, HELD_OUT.stop)):
        index = HELD_OUT.start + i
        if index not in HELD_OUT:
            continue
        bare = ~person_region(subject4.masks[index], info.size)
        difference = np.abs(frame.astype(np.int16) - layer.plate.image.astype(np.int16)).max(axis=2)[bare]
        assert np.median(difference) < 3, (index, np.median(difference))  # measured 1


def test_masks_empty_in_most_frames_train_full_frame_and_say_why(subject4, caplog):
    masks = subject4.masks[:240].copy()
    masks[::4] = 0  # three frames in four lose their mask (the person still detected)
    masks[1::4] = masks[2::4] = 0
    poses = PoseSequence(subject4.keypoints[:240], subject4.detected[:240], subject4.fps, subject4.size, masks=masks)
    with caplog.at_level("WARNING"):
        layer = choose_layer(shared_clip(TARGET), 0, poses)
    assert layer.mode == FULL_FRAME and "mask is empty" in layer.reason, layer.reason
    assert layer.reason in caplog.text, "the warning names the reason"


def test_a_panning_camera_trains_full_frame(pose_model_full, tmp_path):
    """A synthetic pan over subject 4 (the window slides 4 px a frame): masks are fine, the background is not still."""
    info = media.probe(shared_clip(TARGET))
    clip = tmp_path / "pan.mp4"
    with media.VideoWriter(clip, 30.0, (512, 256)) as writer:
        for i, frame in enumerate(media.iter_frames(info, 300, 360)):
            writer.write(cv2.resize(frame[:, 4 * i:4 * i + 768], (512, 256), interpolation=cv2.INTER_AREA))
    poses = pose_sequence(clip, masks=True)
    layer = choose_layer(clip, 0, poses)
    assert layer.mode == FULL_FRAME and "background changes" in layer.reason, layer.reason


@pytest.fixture(scope="module")
def person_model(subject4):
    """A tiny person-mode model trained by `train` on 120 frames (long enough for the alpha to take shape)."""
    return train(shared_clip(TARGET), "person tiny", preset="tiny", steps=150, end=120, config_overrides={"face_stage": False})


def test_training_chooses_person_mode_and_says_so(person_model):
    assert person_model.mode == PERSON and person_model.resolution == (88, 88)  # 128x64's pixels in a square window
    meta = json.loads((person_model.folder / registry.MODEL_FILE).read_text())
    assert meta["mode"] == PERSON and "static background" in meta["layer"]["reason"]
    assert meta["config"]["generator"]["predict_alpha"] and meta["config"]["loss_weights"]["mask"] > 0
    plate = cv2.imread(str(person_model.folder / "plate.png"))
    assert plate.shape == (512, 1024, 3), "the plate is kept at the target's native size"
    assert meta["output_size"] == [1024, 512] and meta["resolution"] == [88, 88]
    listed = {m["name"]: m for m in registry.list_models(data_dir())}["person tiny"]
    assert listed["mode"] == PERSON and listed["mode_reason"]


def _torso_box(poses: PoseSequence, i: int) -> tuple[tuple[int, int], tuple[int, int]]:
    points = poses.keypoints[i, TORSO, :2]
    return tuple(points.min(axis=0).astype(int)), tuple(points.max(axis=0).astype(int) + 1)


def test_rgba_and_composite_transfers_at_the_target_size(person_model, tmp_path):
    """Subject 4's held-out frames as the source: the person comes out where the torso is."""
    alpha_dir, composite_dir = tmp_path / "alpha", tmp_path / "composite"
    alpha_run = transfer(shared_clip(TARGET), person_model, alpha_dir, start=720, end=732, output="person-alpha")
    transfer(shared_clip(TARGET), person_model, composite_dir, start=720, end=732)
    assert alpha_run.video_path is None and alpha_run.size == (1024, 512), "RGBA frames at native size, no mp4"
    poses = PoseSequence.load(alpha_dir / "edn_poses.npz")
    plate = cv2.imread(str(person_model.folder / "plate.png"))
    for i in range(0, 12, 4):
        name = f"{720 + i:06d}.png"
        rgba = cv2.imread(str(alpha_dir / name), cv2.IMREAD_UNCHANGED)
        assert rgba.shape == (512, 1024, 4)
        alpha = rgba[..., 3]
        (x0, y0), (x1, y1) = _torso_box(poses, i)
        torso = np.median(alpha[y0:y1, x0:x1])
        x, y = (x0 + x1) // 2, (y0 + y1) // 2
        beside = np.median(alpha[max(0, y - 150):y + 150, max(0, x - 250):x - 150])  # in the window, beside the person
        # a tiny model after 150 steps: the torso measured 0.6-0.7 opaque, the window beside it 0.05-0.1
        assert torso > 100 and torso > 3 * beside, (torso, beside)
        far = np.ones(alpha.shape, bool)
        far[max(0, y - 300):y + 300, max(0, x - 250):x + 250] = False
        assert alpha[far].max() == 0, "far from the person the frame is transparent"
        composite = cv2.imread(str(composite_dir / name))
        clear = alpha == 0
        assert np.array_equal(composite[clear], plate[clear]), "the composite is the plate wherever alpha is 0"


def test_output_height_and_alpha_checks(person_model, tmp_path):
    low = transfer(shared_clip(TARGET), person_model, tmp_path / "low", start=720, end=722, output_height="512",
                   write_video=False)
    assert low.size == (1024, 512)
    with pytest.raises(EdnError) as raised:
        transfer(shared_clip(TARGET), person_model, tmp_path / "high", start=720, end=722, output_height=720)
    assert raised.value.code == BAD_PARAMS and "output_height" in raised.value.message and "512" in raised.value.message
    assert not (tmp_path / "high").exists()


def test_a_model_from_before_the_person_layer_transfers_full_frame(pose_model_full, tmp_path):
    folder = save_tiny_model("before person layer")
    meta = json.loads((folder / registry.MODEL_FILE).read_text())
    assert "mode" not in meta, "saved as models were before the person layer"
    listed = {m["name"]: m for m in registry.list_models(data_dir())}["before person layer"]
    assert listed["mode"] == FULL_FRAME and "before the person layer" in listed["mode_reason"]
    result = transfer(shared_clip(TARGET), "before person layer", tmp_path / "out", start=720, end=724)
    assert result.size == (128, 64) and result.video_path.is_file()
    frame = cv2.imread(str(tmp_path / "out" / "000720.png"), cv2.IMREAD_UNCHANGED)
    assert frame.shape == (64, 128, 3), "the model's own frames, as before"
    with pytest.raises(EdnError) as raised:
        transfer(shared_clip(TARGET), "before person layer", tmp_path / "rgba", start=720, end=722, output="person-alpha")
    assert raised.value.code == BAD_PARAMS and "full-frame" in raised.value.message
