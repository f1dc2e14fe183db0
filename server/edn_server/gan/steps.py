"""One optimisation step of each training stage, on one batch of consecutive frame pairs.

Body stages (stage 1, and the local-enhancer stage): the first frame of a pair is generated from
a zero previous frame, the second from the generator's own output for the first, as at inference.
The frame discriminator judges (label, frame) for both frames, the temporal discriminator
(labels t-1, t, frames t-1, t). Face stage: the body generator is frozen; the face residual
generator refines the face crop of the second frame and a face discriminator judges the crops.

Every discriminator runs once per step under its (possibly DDP) wrapper, on real and detached
fake inputs stacked into one batch; the generator's adversarial terms go through the plain
module, so DDP sees one forward and one backward per wrapped module and step.
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .discriminators import Features, pair_input, temporal_input
from .face import FaceBox, crop, paste
from .losses import LossWeights, VGGLoss, discriminator_loss, generator_loss


class PairGenerator(nn.Module):
    """Both frames of a pair in one forward (one DDP forward per step): the first from a zero
    previous frame, the second conditioned on the first's output."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, label_prev: torch.Tensor, label_cur: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fake_prev = self.generator(label_prev, None)
        return fake_prev, self.generator(label_cur, fake_prev)


@dataclass
class Batch:
    """A batch of pairs, (N, 3, h, w) in [-1, 1]; boxes: face boxes of the second frames."""

    label_prev: torch.Tensor
    label_cur: torch.Tensor
    real_prev: torch.Tensor
    real_cur: torch.Tensor
    boxes: Sequence[FaceBox] | None = None


def plain(module: nn.Module) -> nn.Module:
    """The module under a DDP or torch.compile wrapper."""
    module = getattr(module, "module", module)
    return getattr(module, "_orig_mod", module)


def _split(features: Features, n: int) -> tuple[Features, Features]:
    """Discriminator outputs of a stacked [real; fake] batch -> (real, fake)."""
    return [[t[:n] for t in scale] for scale in features], [[t[n:] for t in scale] for scale in features]


def _detached(features: Features) -> Features:
    return [[t.detach() for t in scale] for scale in features]


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (tensor cores, no loss scaling needed); fp32 everywhere else."""
    if device.type == "cuda" and amp == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _update(optimizer_g: torch.optim.Optimizer, loss_g: torch.Tensor, generator: nn.Module,
            optimizer_d: torch.optim.Optimizer, loss_d: torch.Tensor) -> None:
    """One step of each side. The generator's loss flows back into the trainable generator
    weights only (`inputs=`), so the discriminators' gradients come from their own loss alone."""
    optimizer_g.zero_grad(set_to_none=True)
    loss_g.backward(inputs=[p for p in generator.parameters() if p.requires_grad])
    optimizer_g.step()
    optimizer_d.zero_grad(set_to_none=True)
    loss_d.backward()
    optimizer_d.step()


@dataclass
class BodyStep:
    """Stage 1 / local enhancer: generator (wrapped PairGenerator), frame and temporal discriminators."""

    pair_generator: nn.Module
    discriminator: nn.Module
    temporal: nn.Module
    optimizer_g: torch.optim.Optimizer
    optimizer_d: torch.optim.Optimizer
    weights: LossWeights
    vgg: VGGLoss | None = None
    amp: str = "off"

    def __call__(self, batch: Batch) -> dict[str, float]:
        device = batch.label_cur.device
        n = batch.label_cur.shape[0]
        with autocast(device, self.amp):
            fake_prev, fake_cur = self.pair_generator(batch.label_prev, batch.label_cur)
            labels = torch.cat([batch.label_prev, batch.label_cur])
            real, fake = torch.cat([batch.real_prev, batch.real_cur]), torch.cat([fake_prev, fake_cur])
            # discriminators: real and detached fake in one pass each
            d_real, d_fake = _split(self.discriminator(torch.cat([pair_input(labels, real), pair_input(labels, fake.detach())])), 2 * n)
            real_t = temporal_input(batch.label_prev, batch.label_cur, batch.real_prev, batch.real_cur)
            fake_t = temporal_input(batch.label_prev, batch.label_cur, fake_prev, fake_cur)
            t_real, t_fake = _split(self.temporal(torch.cat([real_t, fake_t.detach()])), n)
            loss_d = discriminator_loss(d_real, d_fake) + discriminator_loss(t_real, t_fake)
            # generator: adversarial terms through the plain discriminators (no DDP forward)
            loss_g, parts = generator_loss(plain(self.discriminator)(pair_input(labels, fake)), _detached(d_real), fake, real,
                                           self.weights, self.vgg)
            temporal_weights = dataclasses.replace(self.weights, vgg=0.0, l1=0.0)
            loss_t, parts_t = generator_loss(plain(self.temporal)(fake_t), _detached(t_real), fake, real, temporal_weights)
            loss_g = loss_g + loss_t
        _update(self.optimizer_g, loss_g, self.pair_generator, self.optimizer_d, loss_d)
        return {"G": float(loss_g.detach()), "D": float(loss_d.detach()), **parts,
                **{f"temporal_{k}": v for k, v in parts_t.items()}}


def refine_faces(face_generator: nn.Module, frames: torch.Tensor, labels: torch.Tensor,
                 boxes: Sequence[FaceBox]) -> tuple[torch.Tensor, torch.Tensor]:
    """(frames with refined faces, the refined crops): only pixels inside each box change."""
    refined = face_generator(crop(labels, boxes), crop(frames, boxes))
    return paste(frames, refined, boxes), refined


@dataclass
class FaceStep:
    """Face stage: frozen body generator, face residual generator and face discriminator."""

    body_generator: nn.Module
    face_generator: nn.Module
    face_discriminator: nn.Module
    optimizer_g: torch.optim.Optimizer
    optimizer_d: torch.optim.Optimizer
    weights: LossWeights
    vgg: VGGLoss | None = None
    amp: str = "off"

    def __call__(self, batch: Batch) -> dict[str, float]:
        if batch.boxes is None:
            raise ValueError("the face stage needs the face boxes of the batch")
        device = batch.label_cur.device
        n = batch.label_cur.shape[0]
        with autocast(device, self.amp):
            with torch.no_grad():
                generated = self.body_generator(batch.label_cur, self.body_generator(batch.label_prev, None))
            label_crop, generated_crop, real_crop = (crop(t, batch.boxes) for t in (batch.label_cur, generated, batch.real_cur))
            refined = self.face_generator(label_crop, generated_crop)
            labels2 = torch.cat([label_crop, label_crop])
            d_real, d_fake = _split(self.face_discriminator(labels2, torch.cat([real_crop, refined.detach()])), n)
            loss_d = discriminator_loss(d_real, d_fake)
            loss_g, parts = generator_loss(plain(self.face_discriminator)(label_crop, refined), _detached(d_real),
                                           refined, real_crop, self.weights, self.vgg)
        _update(self.optimizer_g, loss_g, self.face_generator, self.optimizer_d, loss_d)
        return {"G": float(loss_g.detach()), "D": float(loss_d.detach()), **parts}


def decayed_lr(base: float, progress: float) -> float:
    """pix2pixHD's schedule within a stage: `base` for the first half, then linear decay to 0."""
    return base * min(1.0, max(0.0, 2.0 * (1.0 - progress)))


def set_lr(optimizers: Sequence[torch.optim.Optimizer], lr: float) -> None:
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = lr
