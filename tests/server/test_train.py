"""GAN training on the CPU with the 'tiny' preset and 48 real frames of the target clip: presets,
the dataset cache, the pair step, the face stage, and the errors a user meets."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_clip
from edn_server.config import data_dir
from edn_server.errors import BAD_CHECKPOINT, BAD_MODEL, BAD_PARAMS, CANCELLED, MODEL_EXISTS, MODEL_NOT_FOUND, EdnError
from edn_server.gan.dataset import build_dataset
from edn_server.gan.face import FaceBox
from edn_server.gan.model_io import load_trained_model
from edn_server.gan.networks import define_generator, discriminator_from_config
from edn_server.gan.steps import Batch, BodyStep, PairGenerator, refine_faces
from edn_server.gan.train import train
from edn_server.gan.train_config import TrainConfig, preset_config
from edn_server.registry import models_dir

CLIP = "edn_subject4_train.mp4"
FRAMES = 48



@pytest.fixture(scope="module")
def clip(pose_model_full):
    return shared_clip(CLIP)


@pytest.fixture(scope="module")
def tiny_config() -> TrainConfig:
    return preset_config("tiny", (1024, 512))


@pytest.fixture(scope="module")
def data(clip, tiny_config):
    return build_dataset(clip, (tiny_config.width, tiny_config.height), tiny_config.face_side, end=FRAMES)


def test_presets_fix_the_height_and_follow_the_target_aspect():
    preview = preset_config("preview", (1024, 512))
    assert (preview.width, preview.height, preview.output_size) == (256, 128, (256, 128))
    paper = preset_config("paper", (1024, 512))
    assert (paper.width, paper.height, paper.output_size) == (512, 256, (1024, 512))
    assert (paper.generator.ngf, paper.generator.n_downsample, paper.generator.n_blocks) == (64, 4, 9)
    for size in ((720, 1280), (600, 600), (1920, 1080)):
        config = preset_config("preview", size)
        multiple = config.global_generator.size_multiple
        assert config.height == 128 and config.width % multiple == 0
        assert abs(config.width / config.height - size[0] / size[1]) <= multiple / config.height
    # budget shares: body : local : face = 0.7 : 0.15 : 0.15 (paper), body : face = 0.8 : 0.2 (no local stage)
    assert paper.stage_steps(1000) == {"body": 700, "local": 150, "face": 150}
    assert preview.stage_steps(1000) == {"body": 800, "face": 200}
    assert preset_config("preview", (1024, 512), face_stage=False).stage_steps(1000) == {"body": 1000}
    assert TrainConfig.from_dict(json.loads(json.dumps(paper.to_dict()))) == paper
    with pytest.raises(EdnError) as error:
        preset_config("huge", (1024, 512))
    assert error.value.code == BAD_PARAMS and "preview" in error.value.message


def test_dataset_is_built_once_with_aligned_frames_labels_and_face_boxes(clip, tiny_config, data):
    assert data.frames.shape == data.labels.shape == (FRAMES, 64, 128, 3)
    assert data.usable.all() and data.has_box.all()  # one man, always in view, face visible
    assert all(data.labels[i].any() for i in range(FRAMES))
    # the label's figure lies on the person: bright label pixels sit where the frame is not the white studio
    figure = data.labels[10].max(axis=2) > 0
    assert data.frames[10][figure].mean() < data.frames[10][~figure].mean() - 20
    for x0, y0, side in data.boxes:
        assert side == tiny_config.face_side and 0 <= x0 <= 128 - side and 0 <= y0 <= 64 - side
    again = build_dataset(clip, (128, 64), tiny_config.face_side, end=FRAMES)
    assert again.folder == data.folder and again.stats == data.stats
    # hold-out: the last 10 % of frames never start or end a training pair
    starts = data.pair_starts(holdout_fraction=0.1)
    assert starts.max() + 1 < data.training_frames(0.1) == FRAMES - 5


def _tiny_body_step(config: TrainConfig, seed: int = 0) -> tuple[BodyStep, torch.nn.Module]:
    torch.manual_seed(seed)
    generator = define_generator(config.global_generator)
    discriminator, temporal = discriminator_from_config(config.discriminator), discriminator_from_config(config.temporal_discriminator)
    adam = dict(lr=config.lr, betas=(config.beta1, config.beta2))
    step = BodyStep(PairGenerator(generator), discriminator, temporal, torch.optim.Adam(generator.parameters(), **adam),
                    torch.optim.Adam([*discriminator.parameters(), *temporal.parameters()], **adam), config.loss_weights)
    return step, generator


def _batch(data, starts) -> Batch:
    label_prev, real_prev = data.tensors(starts)
    label_cur, real_cur = data.tensors(starts + 1)
    return Batch(label_prev, label_cur, real_prev, real_cur)


def test_a_tiny_model_overfits_a_fixed_batch(tiny_config, data):
    step, generator = _tiny_body_step(dataclasses.replace(tiny_config, lr=1e-3))  # a higher rate: a short test
    batch = _batch(data, np.array([5, 30]))

    def error() -> float:
        with torch.no_grad():
            return float((generator(batch.label_cur, generator(batch.label_prev)) - batch.real_cur).abs().mean())

    before = error()
    for _ in range(40):
        losses = step(batch)
    assert np.isfinite(list(losses.values())).all()
    assert error() < 0.5 * before  # mean L1 to the real frame at least halves in 40 steps (measured: to about 0.35)


def test_second_frame_is_generated_from_the_first_output(tiny_config, data):
    torch.manual_seed(0)
    generator = define_generator(tiny_config.global_generator).eval()
    batch = _batch(data, np.array([12]))
    with torch.no_grad():
        fake_prev, fake_cur = PairGenerator(generator)(batch.label_prev, batch.label_cur)
        assert torch.equal(fake_prev, generator(batch.label_prev, torch.zeros_like(batch.label_prev)))
        assert torch.equal(fake_cur, generator(batch.label_cur, fake_prev))
        other = generator(batch.label_cur, fake_prev.flip(-1))
    assert (other - fake_cur).abs().max() > 1e-3  # another previous output, another frame


def _face_ssim(a: np.ndarray, b: np.ndarray) -> float:
    try:
        from edn_server.gan.metrics import ssim
    except ImportError:  # a plain global SSIM when the metrics module is absent
        x, y = a.astype(np.float64), b.astype(np.float64)
        c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
        cov = ((x - x.mean()) * (y - y.mean())).mean()
        return float((2 * x.mean() * y.mean() + c1) * (2 * cov + c2) / ((x.mean() ** 2 + y.mean() ** 2 + c1) * (x.var() + y.var() + c2)))
    return ssim(a, b)


def test_face_stage_changes_only_the_face_box_and_improves_the_face(clip, data):
    # full-frame: compared with the full-frame dataset below (test_person_layer.py trains person mode)
    model = train(clip, "face-test", preset="tiny", steps=120, end=FRAMES, config_overrides={"face_share": 0.5, "layer": "full-frame"})
    assert model.face_generator is not None and model.info["steps"] == 120
    assert (model.folder / "samples.png").is_file() and (model.folder / "losses.png").is_file()
    assert not (model.folder / "training").exists()

    starts = np.arange(0, FRAMES - 1, 3)
    label_prev, _ = data.tensors(starts)
    label_cur, real_cur = data.tensors(starts + 1)
    boxes = data.face_boxes(starts + 1)
    with torch.no_grad():
        body = model.generator(label_cur, model.generator(label_prev))
        refined, _ = refine_faces(model.face_generator, body, label_cur, boxes)
    inside = torch.zeros_like(body, dtype=torch.bool)
    for i, box in enumerate(boxes):
        inside[i, :, box.y0:box.y1, box.x0:box.x1] = True
    assert torch.equal(refined[~inside], body[~inside])
    assert (refined[inside] - body[inside]).abs().max() > 1e-3

    def face_score(frames: torch.Tensor) -> float:
        images = ((frames.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        real = ((real_cur + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        return float(np.mean([_face_ssim(images[i, b.y0:b.y1, b.x0:b.x1], real[i, b.y0:b.y1, b.x0:b.x1]) for i, b in enumerate(boxes)]))

    assert face_score(refined) > face_score(body) + 0.01  # measured: 0.04 for stage 1 alone, 0.12 with the face stage


def test_existing_names_and_missing_checkpoints_fail_clearly(clip):
    taken = models_dir(data_dir()) / "taken"
    (taken / "keep.txt").parent.mkdir(parents=True)
    (taken / "keep.txt").write_text("user data")
    with pytest.raises(EdnError) as error:
        train(clip, "taken", preset="tiny", steps=2, end=FRAMES)
    assert error.value.code == MODEL_EXISTS and "--resume" in error.value.message and "another --name" in error.value.message
    assert (taken / "keep.txt").read_text() == "user data"
    with pytest.raises(EdnError) as error:
        train(clip, "never-trained", preset="tiny", steps=2, end=FRAMES, resume=True)
    assert error.value.code == BAD_CHECKPOINT and "without --resume" in error.value.message
    with pytest.raises(EdnError) as error:
        train(clip, "../escape", preset="tiny", steps=2)
    assert error.value.code == BAD_PARAMS


def test_a_run_stopped_before_its_first_checkpoint_leaves_no_model_folder(clip):
    with pytest.raises(EdnError) as error:
        train(clip, "bad-range", preset="tiny", steps=2, start=40, end=10_000)
    assert error.value.code == "BAD_RANGE"
    # cancelled while detecting poses: the folder was created, and nothing in it could be resumed
    with pytest.raises(EdnError) as error:
        train(clip, "cancelled-early", preset="tiny", steps=2, start=1, end=FRAMES, cancelled=lambda: True)
    assert error.value.code == CANCELLED
    assert not (models_dir(data_dir()) / "bad-range").exists() and not (models_dir(data_dir()) / "cancelled-early").exists()


def test_loading_models_reports_missing_names_and_mismatched_weights(clip):
    with pytest.raises(EdnError) as error:
        load_trained_model("no-such-model")
    assert error.value.code == MODEL_NOT_FOUND and "edn train" in error.value.message
    model = train(clip, "mismatch", preset="tiny", steps=2, end=FRAMES, config_overrides={"layer": "full-frame"})
    assert model.generator.training is False and model.resolution == (128, 64)
    assert isinstance(model.face_box(data_keypoints(model)), FaceBox)
    meta_file = model.folder / "model.json"
    meta = json.loads(meta_file.read_text())
    meta["config"]["generator"]["ngf"] = 16
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(EdnError) as error:
        load_trained_model("mismatch")
    assert error.value.code == BAD_MODEL and "ngf" in error.value.message and "16" in error.value.message


def data_keypoints(model) -> np.ndarray:
    """A pose in the target video's pixels: the first frame of the model's dataset."""
    from edn_server.pose.sequence import PoseSequence

    return PoseSequence.load(Path(model.info["dataset"]["folder"]) / "poses.npz").keypoints[0]


def test_edn_train_prints_the_heldout_sample_of_frames_it_never_trained_on(clip, data, tiny_config, capsys):
    """The tiny preset holds out the clip's last 10% (frames 43..47 of 48): the sample's rows are the
    first and last of them, real | label | generated, and no training pair reaches them."""
    from edn_server import cli
    from edn_server.names import HELDOUT_SAMPLE_FILE

    assert cli.main(["train", str(clip), "--name", "watched", "--preset", "tiny", "--steps", "2", "--end", str(FRAMES),
                     "--layer", "full-frame"]) == 0  # the `data` fixture holds full-frame tiles
    path = models_dir(data_dir()) / "watched" / HELDOUT_SAMPLE_FILE
    assert str(path) in capsys.readouterr().out and path.is_file()
    import cv2

    sample = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert sample.shape == (2 * 64 + 4, 3 * 128 + 2 * 4, 3)
    held_out = data.training_frames(tiny_config.holdout_fraction)
    assert held_out == 43 and data.pair_starts(tiny_config.holdout_fraction).max() + 1 < held_out
    for row, frame in ((sample[:64], 43), (sample[-64:], 47)):
        assert np.array_equal(row[:, :128], data.frames[frame]) and np.array_equal(row[:, 132:260], data.labels[frame])
