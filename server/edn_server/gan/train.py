"""Training a target subject: video -> layer (person over a plate, or full-frame; train_layer.py)
-> dataset cache -> stage 1 (body) -> local enhancer (paper) -> face GAN -> a model registered by
name under `registry.models_dir(data_dir())/<name>/`.

Budget: `steps` or `minutes` bounds the whole run (a time budget counts dataset building too),
shared among the stages as TrainConfig.stage_shares says; without either, the preset's
default_steps. Every stage runs at least one step. The learning rate is constant for the first
half of each stage and decays linearly to 0 over the second half (of its steps or its time).

While training, `<model>/training/checkpoint.pt` is written every checkpoint_every_steps steps or
checkpoint_every_minutes minutes, and on cancel, Ctrl-C or failure of a step; `resume=True`
continues from it (with a steps budget the result is the same as an uninterrupted run). When the
run finishes, model.json and weights.pt are written (model_io), with samples.png and losses.png,
and the checkpoint is removed. heldout_sample.png (training_review) is written after the first
step, every few minutes and at the end. The face stage is kept only if it raises held-out face
SSIM (face_check.py, model.json "face"). Under torchrun, see distributed.py.
A finished model continues (`resume=True` without a checkpoint) as train_more.py says.
"""
from __future__ import annotations

import logging
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import media as media_io
from .. import registry
from ..config import data_dir
from ..errors import BAD_CHECKPOINT, CANCELLED, MODEL_EXISTS, EdnError
from ..names import SAMPLES_FILE
from ..progress import Progress, no_progress
from . import distributed, train_more
from .budget import plan_budget, progress_counts, stage_progress
from .checkpoint import (
    LossHistory,
    RunPosition,
    checkpoint_path,
    flat_differences,
    read_checkpoint,
    restore_networks,
    restore_optimizers,
    save_checkpoint,
    set_rng_state,
)
from .dataset import PairSampler, TrainingData, build_dataset
from .discriminators import FaceDiscriminator, discriminator_from_config
from .face_check import check_face_stage
from .losses import VGGLoss
from .model_io import TrainedModel, load_trained_model, save_trained_model
from .networks import define_face_generator, define_generator
from .steps import Batch, BodyStep, FaceStep, PairGenerator, decayed_lr, pair_batch, plain, set_lr
from .train_config import STAGE_LABELS, STAGES, TrainConfig, check_budget, face_side_for_height, preset_config
from .train_layer import TargetLayer, choose_target_layer, layer_info, resolved_config
from .training_review import HELDOUT_EVERY_S, read_losses, training_samples, write_heldout, write_losses, write_png
from .weight_init import init_weights

log = logging.getLogger(__name__)
REPORT_INTERVAL_S = 60.0  # at most one sample grid and loss plot per minute, and one at the end


@dataclass
class Stage:
    """One stage's networks (plain modules, named as in checkpoints), optimisers, step and data."""

    name: str
    networks: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    step: BodyStep | FaceStep
    data: TrainingData
    sampler: PairSampler


def train(target_video: str | Path, name: str, preset: str = "preview", steps: int | None = None, minutes: float | None = None,
          resume: bool = False, start: int = 0, end: int | None = None, progress: Progress | None = None,
          cancelled: Callable[[], bool] | None = None, config_overrides: dict[str, Any] | None = None,
          device: str | torch.device | None = None) -> TrainedModel:
    """Train (or with `resume`, continue training: from its checkpoint, or a finished model for the
    new budget) the target model `name` on frames [start, end) of `target_video`. Returns the
    finished model. Raises EdnError: BAD_PARAMS, MODEL_EXISTS (the name is taken and resume is off),
    BAD_CHECKPOINT (nothing to resume, or other settings or frames), media and pose errors of the
    target, CANCELLED (a checkpoint to resume from was written)."""
    registry.check_name(name)
    check_budget(steps, minutes)
    env = distributed.env_from_os()
    device = distributed.pick_device(device, env)
    created = distributed.init(env, device)
    try:
        return TrainingRun(Path(target_video), name, preset, steps, minutes, resume, start, end, progress, cancelled,
                           config_overrides or {}, device, env).run()
    finally:
        distributed.shutdown(created)


class TrainingRun:
    def __init__(self, video: Path, name: str, preset: str, steps: int | None, minutes: float | None, resume: bool,
                 start: int, end: int | None, progress: Progress | None, cancelled: Callable[[], bool] | None,
                 overrides: dict[str, Any], device: torch.device, env: distributed.DistEnv):
        self.video, self.name, self.preset, self.resume = video, name, preset, resume
        self.budget_steps, self.budget_minutes = steps, minutes
        self.start, self.end, self.overrides, self.device, self.env = start, end, overrides, device, env
        self.progress = (progress or no_progress) if env.is_main else no_progress
        self.cancelled = cancelled if env.is_main else None
        self.folder = registry.models_dir(data_dir()) / name
        self.checkpoint = checkpoint_path(self.folder)
        self._created_folder = False
        self._vgg: VGGLoss | None | bool = False  # False: not looked up yet
        self._last_save = time.monotonic()
        self._last_report: float | None = None
        self._earlier_weights: train_more.EarlierWeights | None = None
        self._last_heldout = float("-inf")  # the first held-out sample comes after the first step

    # --- setup -----------------------------------------------------------------------------
    def run(self) -> TrainedModel:
        began = time.monotonic()
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed frame sizes: pick the fastest convolutions once
        info = media_io.probe(self.video)
        self.start, self.end = media_io.check_range(info, self.start, self.end)
        self.config = self.requested = preset_config(self.preset, info.size, **self.overrides)
        self.target = {"video": str(info.path.resolve()), "hash": media_io.content_hash(info.path), "start": self.start, "end": self.end}
        self.earlier = train_more.finished_model(self.folder, self.target) if self.resume else None
        if self.earlier is not None:  # a model continues with its own settings (and its own layer)
            self.config = self.requested = TrainConfig.from_dict(self.earlier["config"])
        try:
            payload = distributed.main_first(self._open_folder, self.env, then_others=False)
            if self.resume and not self.env.is_main:
                payload = read_checkpoint(self.checkpoint)
            self._seed(self.config.seed)
            self.layer = distributed.main_first(self._choose_layer, self.env)
            self.config = resolved_config(self.requested, self.layer)
            self.datasets = self._build_datasets()
            self.stats = self.datasets["body"].stats
            if payload is None:
                earlier = self.earlier or {}
                self.position = RunPosition(stage=next(iter(self._shares())), step=int(earlier.get("steps") or 0),
                                            elapsed_s=time.monotonic() - began)
                self.history = LossHistory(read_losses(self.folder) if self.earlier else None)  # the curve goes on
            else:
                self.position = RunPosition(**payload["position"])
                self.history = LossHistory(payload["losses"])
            self._plan_budget()
            model = self._train_stages(payload)
        except BaseException:
            if self._created_folder and not self.checkpoint.exists() and not (self.folder / registry.MODEL_FILE).exists():
                shutil.rmtree(self.folder, ignore_errors=True)  # nothing to resume: leave nothing behind
            raise
        return model

    def _shares(self) -> dict[str, float]:
        return train_more.stage_shares(self.config, self.earlier)

    def _open_folder(self) -> dict[str, Any] | None:
        """Rank 0: check the name against resume, create the folder; the checkpoint when resuming."""
        if not self.resume:
            if self.folder.exists():
                raise EdnError(MODEL_EXISTS, f"A model named {self.name!r} already exists in {self.folder}. Pass --resume to continue "
                                             "its training, choose another --name, or delete it first.")
            self.checkpoint.parent.mkdir(parents=True)
            self._created_folder = True
            return None
        if not self.checkpoint.is_file():
            if self.earlier is not None:
                return None  # continue the finished model from its weights
            raise EdnError(BAD_CHECKPOINT, f"There is no training of {self.name!r} to resume ({self.checkpoint} is missing); "
                                           "start it without --resume.")
        payload = read_checkpoint(self.checkpoint)
        saved = {**payload["config"], "useful_steps": self.requested.useful_steps}  # a warning's floor, not how it trains
        differences = flat_differences(self.requested.to_dict(), saved)
        saved_target = payload["extra"].get("target", {})
        differences += flat_differences({k: self.target[k] for k in ("hash", "start", "end")},  # the file may have moved
                                        {k: saved_target.get(k) for k in ("hash", "start", "end")})
        if differences:
            raise EdnError(BAD_CHECKPOINT, f"The checkpoint of {self.name!r} was trained with other settings "
                                           f"({'; '.join(differences[:6])}). Resume with the same video, frame range, preset "
                                           "and settings, or train under another name.")
        return payload

    @staticmethod
    def _seed(seed: int) -> None:
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)

    def _choose_layer(self) -> TargetLayer:
        """Person or full-frame (the masks come with the target's pose extraction, cached)."""
        return choose_target_layer(self.video, self.start, self.end, self.requested, self.progress, self.cancelled)

    def _build_datasets(self) -> dict[str, TrainingData]:
        def build(size: tuple[int, int]) -> Callable[[], TrainingData]:
            return lambda: build_dataset(self.video, size, face_side_for_height(size[1]), self.start, self.end,
                                         self.config.pose_model, self.config.smoothing, self.progress, self.cancelled, self.layer)

        body_size, out_size = (self.config.width, self.config.height), self.config.output_size
        data = {"body": distributed.main_first(build(body_size), self.env)}
        data["out"] = data["body"] if out_size == body_size else distributed.main_first(build(out_size), self.env)
        return data

    def _plan_budget(self) -> None:
        if self.budget_steps is None and self.budget_minutes is None and self.position.plan:
            return  # resuming with the checkpoint's budget
        plan_budget(self.position, self._shares(), self.budget_minutes, self.budget_steps or self.config.default_steps,
                    lambda total: train_more.stage_steps(self.config, self.earlier, total))

    # --- stages ----------------------------------------------------------------------------
    def _train_stages(self, payload: dict[str, Any] | None) -> TrainedModel:
        stages = list(self._shares())
        if self.position.stage not in stages:
            raise EdnError(BAD_CHECKPOINT, f"{self.checkpoint} is at stage {self.position.stage!r}, which this run does not have.")
        previous: nn.Module | None = None
        face: nn.Module | None = None
        for stage in stages[stages.index(self.position.stage):]:
            current = self._build_stage(stage, previous, payload)
            payload = None
            if current is None:
                log.warning("no frame of the target shows a face box; the face stage is skipped")
                continue
            self._run_stage(current)
            if stage == "face":
                face = current.networks["face_generator"]
            else:
                previous = current.networks["generator"]
            self.last_stage = current
        return self._finish(self.last_stage.networks["generator"], face)

    def _build_stage(self, stage: str, previous: nn.Module | None, payload: dict[str, Any] | None) -> Stage | None:
        config, device = self.config, self.device
        if self.position.stage != stage:  # a new stage starts here
            self.position.stage, self.position.stage_step, self.position.stage_started_s = stage, 0, self.position.elapsed_s
        data = self.datasets["body" if stage == "body" else "out"]
        pairs = data.pair_starts(config.holdout_fraction, need_face=stage == "face")
        if stage == "face" and len(pairs) == 0:
            return None
        sampler = PairSampler(pairs, config.batch_size, config.seed + 101 * STAGES.index(stage), self.env.rank, self.env.world_size)
        torch.manual_seed(config.seed + STAGES.index(stage))  # a stage's initial weights do not depend on its history
        if stage == "face":
            generator = previous if previous is not None else define_generator(config.generator)
            networks = {"generator": generator, "face_generator": define_face_generator(config.face_generator),
                        "face_discriminator": FaceDiscriminator(config.face_discriminator)}
        else:
            generator = init_weights(define_generator(config.global_generator if stage == "body" else config.generator), config.weight_init)
            if stage == "local" and previous is not None:
                generator.load_global_state(plain(previous).state_dict(), plain(previous).config)
            networks = {"generator": generator, "discriminator": discriminator_from_config(config.discriminator),
                        "temporal": discriminator_from_config(config.temporal_discriminator)}
        for name, module in networks.items():
            if name != "generator":  # the generator is new only in body stages: initialised above
                init_weights(module, config.weight_init)
            networks[name] = self._placed(plain(module))
        trained, judges = ("face_generator", ("face_discriminator",)) if stage == "face" else ("generator", ("discriminator", "temporal"))
        betas = (config.beta1, config.beta2)
        optimizers = {
            "generator": torch.optim.Adam(networks[trained].parameters(), lr=config.lr, betas=betas),
            "discriminator": torch.optim.Adam([p for j in judges for p in networks[j].parameters()], lr=config.lr, betas=betas),
        }
        if payload is None and self.earlier is not None:
            self._earlier_weights = self._earlier_weights or train_more.EarlierWeights(self.folder)
            self._earlier_weights.load(stage, networks)
        if payload is not None:
            restore_networks(payload, networks, self.checkpoint)
            restore_optimizers(payload, optimizers, self.checkpoint)
            set_rng_state(payload["rng"])
            sampler.load_state_dict(payload["rng"]["sampler"])
        wrap = distributed.wrap
        if stage == "face":
            networks["generator"].eval().requires_grad_(False)
            step = FaceStep(networks["generator"], wrap(self._compiled(networks["face_generator"]), self.env, device),
                            wrap(networks["face_discriminator"], self.env, device), optimizers["generator"],
                            optimizers["discriminator"], config.face_loss_weights, self.vgg(config.face_loss_weights.vgg), config.amp)
        else:
            step = BodyStep(wrap(PairGenerator(self._compiled(networks["generator"])), self.env, device),
                            wrap(networks["discriminator"], self.env, device), wrap(networks["temporal"], self.env, device),
                            optimizers["generator"], optimizers["discriminator"], config.loss_weights,
                            self.vgg(config.loss_weights.vgg), config.amp)
        return Stage(stage, networks, optimizers, step, data, sampler)

    def _placed(self, module: nn.Module) -> nn.Module:
        module = module.to(self.device)
        if self.device.type == "cuda" and self.config.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def _compiled(self, module: nn.Module) -> nn.Module:
        return torch.compile(module) if self.config.compile else module

    def vgg(self, weight: float) -> VGGLoss | None:
        """The perceptual loss, loaded once per run; None (load_vgg19 says why, once) without weights."""
        if not (self.config.use_vgg and weight):
            return None
        if self._vgg is False:
            from .vgg import load_vgg19

            network = load_vgg19(device=self.device)
            self._vgg = VGGLoss(network) if network is not None else None
        return self._vgg

    def _batch(self, stage: Stage) -> Batch:
        batch = pair_batch(stage.data, stage.sampler.next_batch(), self.device, face_boxes=stage.name == "face")
        if self.device.type == "cuda" and self.config.channels_last:
            tensors = [t.contiguous(memory_format=torch.channels_last) for t in batch.tensors()]
            batch = Batch(*tensors, boxes=batch.boxes, person=batch.person)
        return batch

    def _report(self, stage: str) -> None:
        self.progress(*progress_counts(self.position), STAGE_LABELS[stage])

    def _run_stage(self, stage: Stage) -> None:
        tick = time.monotonic()
        try:
            while True:
                done, fraction = stage_progress(self.position, stage.name)
                want_stop = bool(self.cancelled and self.cancelled())
                done, want_stop = distributed.any_rank([done, want_stop], self.env, self.device)
                if want_stop:
                    self._save(stage)
                    raise EdnError(CANCELLED, f"Training of {self.name!r} was cancelled after {self.position.step} steps; "
                                              f"the checkpoint in {self.checkpoint.parent} lets it continue with --resume.")
                if done:
                    break
                set_lr(list(stage.optimizers.values()), decayed_lr(self.config.lr, fraction))
                losses = stage.step(self._batch(stage))
                now = time.monotonic()
                self.position.elapsed_s += now - tick
                tick = now
                self.position.stage_step += 1
                self.position.step += 1
                self.history.add(self.position.step, stage.name, losses)
                self._report(stage.name)
                if self.env.is_main and now - self._last_heldout >= HELDOUT_EVERY_S:
                    self._last_heldout = now
                    write_heldout(self.folder, stage.networks, stage.data, self.config.holdout_fraction, self.device)
                if (self.position.step % self.config.checkpoint_every_steps == 0
                        or now - self._last_save >= 60.0 * self.config.checkpoint_every_minutes):
                    self._save(stage)
        except KeyboardInterrupt:
            self._save(stage)
            raise

    # --- output ----------------------------------------------------------------------------
    def _save(self, stage: Stage) -> None:
        """Rank 0: the checkpoint, then the sample grid and loss curves."""
        self._last_save = time.monotonic()
        if not self.env.is_main:
            return
        save_checkpoint(self.checkpoint, config=self.requested.to_dict(), position=self.position, networks=stage.networks,
                        optimizers=stage.optimizers, sampler_state=stage.sampler.state_dict(), history=self.history,
                        extra={"target": self.target})
        if self._last_report is None or time.monotonic() - self._last_report >= REPORT_INTERVAL_S:
            self._write_reports(stage)  # plotting costs about a second: not at every checkpoint of a fast run

    def _write_reports(self, stage: Stage) -> None:
        self._last_report = time.monotonic()
        if self.config.sample_count:
            face = stage.networks.get("face_generator")
            grid = training_samples(stage.networks["generator"], face, stage.data, self.config.sample_count, self.device)
            write_png(self.folder / SAMPLES_FILE, grid)
        write_losses(self.folder, self.history.entries)

    def _finish(self, generator: nn.Module, face_generator: nn.Module | None) -> TrainedModel:
        final_stage = self.last_stage
        if self.env.is_main:
            self._write_reports(final_stage)
            face = None if face_generator is None else check_face_stage(generator, face_generator, final_stage.data,
                                                                         self.config.holdout_fraction, self.device, self.folder)
            write_heldout(self.folder, final_stage.networks, final_stage.data, self.config.holdout_fraction, self.device,
                          use_face=face is None or face.used)  # the frames transfers will make
            out = self.datasets["out"]
            last = self.history.entries[-1] if self.history.entries else {}
            info = {
                "steps": self.position.step,
                "metrics": {"final_losses": {k: v for k, v in last.items() if k not in ("step", "stage")}},
                "training": {"seconds": round(self.position.elapsed_s + train_more.seconds(self.earlier), 1), "device": str(self.device),
                             "world_size": self.env.world_size, "budget": {"steps": self.position.total_steps,
                             "minutes": self.position.minutes}, "vgg_loss": isinstance(self._vgg, VGGLoss),
                             "face_stage": face_generator is not None},
                "target": self.target,
                **({"face": face.to_dict()} if face else {}),
                **layer_info(self.folder, self.layer, self.config),
                "dataset": {"folder": str(out.folder), "train_frames": out.training_frames(self.config.holdout_fraction),
                            "frames": len(out)},
            }
            save_trained_model(self.folder, self.config, self.stats, plain(generator), plain(face_generator) if face_generator else None,
                               info)
            shutil.rmtree(self.checkpoint.parent, ignore_errors=True)
            return load_trained_model(self.folder, self.device)
        generator = plain(generator).eval()
        face = plain(face_generator).eval() if face_generator is not None else None
        return TrainedModel(self.name, self.folder, self.config, self.stats, generator, face,
                            self.config.face_side if face is not None else None, self.config.output_size, {})

