"""Interrupting and resuming training: cancel stops within a step and leaves a checkpoint, and a
resumed run reaches the same weights as an uninterrupted one (tiny preset, CPU, one thread)."""
from __future__ import annotations

import json

import pytest
import torch
from conftest import shared_clip
from edn_server.config import data_dir
from edn_server.errors import BAD_CHECKPOINT, CANCELLED, UNDER_TRAINED, EdnError
from edn_server.gan.checkpoint import checkpoint_path, read_checkpoint
from edn_server.gan.train import train
from edn_server.registry import models_dir, training_warning

CLIP = "edn_subject4_train.mp4"
FRAMES = 32
STEPS = 12  # tiny preset: 10 body steps, then 2 face steps



@pytest.fixture(scope="module")
def clip(pose_model_full):
    return shared_clip(CLIP)


class CancelAfter:
    """cancelled() for the trainer: true once `steps` steps were reported through progress."""

    def __init__(self, steps: int):
        self.steps, self.seen, self.stages = steps, 0, []

    def progress(self, done: int, total: int, stage: str) -> None:
        if stage.startswith("train"):
            self.seen = done
            self.stages.append(stage)

    def __call__(self) -> bool:
        return self.seen >= self.steps


def _weights(model) -> dict[str, torch.Tensor]:
    state = {f"generator.{k}": v for k, v in model.generator.state_dict().items()}
    state.update({f"face.{k}": v for k, v in model.face_generator.state_dict().items()})
    return state


def _interrupt(clip, name: str, after: int, resume: bool) -> None:
    stop = CancelAfter(after)
    with pytest.raises(EdnError) as error:
        train(clip, name, preset="tiny", steps=STEPS, end=FRAMES, resume=resume, progress=stop.progress, cancelled=stop)
    assert error.value.code == CANCELLED and "--resume" in error.value.message
    return stop


def test_resumed_runs_reach_the_weights_of_an_uninterrupted_run(clip):
    whole = train(clip, "whole", preset="tiny", steps=STEPS, end=FRAMES)

    stop = _interrupt(clip, "pieces", after=4, resume=False)  # in stage 1
    saved = read_checkpoint(checkpoint_path(whole.folder.with_name("pieces")))
    assert saved["position"]["step"] == 4 and saved["position"]["stage"] == "body"  # stopped within one step of asking
    assert stop.stages[-1] == "train: body"
    assert not (whole.folder.with_name("pieces") / "model.json").exists()
    stop = _interrupt(clip, "pieces", after=11, resume=True)  # in the face stage
    assert stop.stages[-1] == "train: face"
    assert read_checkpoint(checkpoint_path(whole.folder.with_name("pieces")))["position"]["step"] == 11
    pieces = train(clip, "pieces", preset="tiny", end=FRAMES, resume=True)  # the checkpoint's budget

    assert pieces.info["steps"] == whole.info["steps"] == STEPS
    a, b = _weights(whole), _weights(pieces)
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    print(f"largest weight difference after two resumes: {worst}")
    assert worst <= 1e-6, f"resumed weights differ from the uninterrupted run's by up to {worst}"
    losses = json.loads((pieces.folder / "losses.json").read_text())
    assert [e["step"] for e in losses] == list(range(1, STEPS + 1))


def test_resuming_with_other_settings_fails_and_keeps_the_checkpoint(clip):
    _interrupt(clip, "changed", after=2, resume=False)
    with pytest.raises(EdnError) as error:
        train(clip, "changed", preset="tiny", steps=STEPS, end=FRAMES, resume=True, config_overrides={"generator": {"ngf": 4}})
    assert error.value.code == BAD_CHECKPOINT
    assert "generator.ngf: this run has 4, the checkpoint has 8" in error.value.message
    with pytest.raises(EdnError) as error:
        train(clip, "changed", preset="tiny", steps=STEPS, end=FRAMES - 1, resume=True)
    assert error.value.code == BAD_CHECKPOINT and "end" in error.value.message
    assert checkpoint_path(train(clip, "changed", preset="tiny", steps=STEPS, end=FRAMES, resume=True).folder).parent.exists() is False


def test_a_finished_model_continues_for_a_new_budget(clip):
    """Resume on a finished model: from its generators, for the new budget; steps, seconds and the loss
    curve add up, and the under-trained warning goes once the preset's useful floor is reached."""
    brief = train(clip, "brief", preset="tiny", steps=4, end=FRAMES)
    warning = training_warning(brief.info)
    assert warning["code"] == UNDER_TRAINED and "4 steps" in warning["message"] and "10" in warning["message"]
    before = {k: v.clone() for k, v in _weights(brief).items()}
    with pytest.raises(EdnError) as error:
        train(clip, "brief", preset="tiny", steps=8, end=FRAMES - 1, resume=True)
    assert error.value.code == BAD_CHECKPOINT and "other frames" in error.value.message
    more = train(clip, "brief", preset="paper", steps=8, end=FRAMES, resume=True)  # a model keeps its own preset
    assert more.config.preset == "tiny" and more.info["steps"] == 12 and training_warning(more.info) is None
    assert more.info["training"]["seconds"] > brief.info["training"]["seconds"]
    assert [e["step"] for e in json.loads((more.folder / "losses.json").read_text())] == list(range(1, 13))
    assert not checkpoint_path(more.folder).parent.exists()
    after = _weights(more)
    assert max(float((after[k] - before[k]).abs().max()) for k in before) > 0, "the continued run trained the model"


def test_a_time_budget_bounds_the_whole_run(clip):
    past_budget: dict[str, int] = {}  # per stage, the steps that reported after the budget was used up

    def progress(done, total, stage):  # a time budget reports (seconds used, seconds of budget)
        if stage.startswith("train") and done >= total:
            past_budget[stage] = past_budget.get(stage, 0) + 1

    model = train(clip, "timed", preset="tiny", minutes=0.05, end=FRAMES, progress=progress)
    training = model.info["training"]
    assert training["budget"] == {"steps": None, "minutes": 0.05}
    assert model.info["steps"] >= 2
    # Past the budget a stage takes at most one step: the one that crossed it, or (when building the
    # dataset on a loaded machine used the budget up) the one step every stage runs. Independent of speed.
    assert past_budget and max(past_budget.values()) == 1, past_budget


SMALL_PAPER = {  # the paper preset's stages and shapes, with networks small enough for a test
    "height": 32,
    "generator": {"ngf": 8, "n_downsample": 2, "n_blocks": 1, "n_blocks_local": 1},
    "face_generator": {"ngf": 8, "n_downsample": 2, "n_blocks": 1},
    "discriminator": {"ndf": 8, "n_layers": 2, "num_d": 1},
    "temporal_discriminator": {"ndf": 8, "n_layers": 2, "num_d": 1},
    "face_discriminator": {"ndf": 8, "n_layers": 2, "num_d": 1},
    "use_vgg": False,
    "layer": "full-frame",  # the full frame's 2:1 shapes (person mode trains a square window)
}


def test_paper_local_stage_starts_from_the_stage1_generator(clip):
    run = dict(preset="paper", steps=4, end=FRAMES, config_overrides=SMALL_PAPER)  # body 2, local 1, face 1 steps
    checkpoint = checkpoint_path(models_dir(data_dir()) / "paper-small")
    stop = CancelAfter(2)
    with pytest.raises(EdnError):  # stop after stage 1 ...
        train(clip, "paper-small", progress=stop.progress, cancelled=stop, **run)
    body = read_checkpoint(checkpoint)
    assert body["position"]["stage"] == "body" and body["position"]["stage_step"] == 2
    with pytest.raises(EdnError):  # ... and again as the local stage begins (both datasets are cached by now)
        train(clip, "paper-small", resume=True, cancelled=_after_calls(2), **run)
    local = read_checkpoint(checkpoint)
    assert local["position"]["stage"] == "local" and local["position"]["stage_step"] == 0
    trunk = {k: v for k, v in body["networks"]["generator"]["state"].items() if not k.startswith("head.")}
    enhancer = local["networks"]["generator"]["state"]
    assert trunk and all(torch.equal(v, enhancer[f"global_generator.{k}"]) for k, v in trunk.items())

    model = train(clip, "paper-small", resume=True, **run)
    assert type(model.generator).__name__ == "LocalEnhancer" and model.resolution == (128, 64) == model.config.output_size
    assert model.face_side == 32 and model.info["steps"] == 4

    # continued: the local stage (whose generator is the model's) and the face stage, not stage 1 again
    seen = CancelAfter(10**6)
    more = train(clip, "paper-small", preset="paper", steps=2, end=FRAMES, resume=True, progress=seen.progress)
    assert more.info["steps"] == 6 and sorted(set(seen.stages)) == ["train: face", "train: local"]
    assert type(more.generator).__name__ == "LocalEnhancer" and more.config == model.config


def _after_calls(n: int):
    """cancelled() that turns true on its n-th call (once per step, before it; building a dataset calls it too)."""
    calls = [0]

    def cancelled() -> bool:
        calls[0] += 1
        return calls[0] >= n

    return cancelled
