"""One optimisation step of each training stage, on one batch of consecutive frame pairs.

Body stages (stage 1, and the local-enhancer stage): the first frame of a pair is generated from
a zero previous frame, the second from the generator's own output for the first, as at inference.
The frame discriminator judges (label, frame) for both frames, the temporal discriminator
(labels t-1, t, frames t-1, t). Face stage: the body generator is frozen; the face residual
generator refines the face crop of the second frame and a face discriminator judges the crops.

Person mode (the batch carries masks, plates and the windows' re-cut matrices): the generator
predicts colour and alpha in the person window; the frame it is judged by is the composite
alpha * colour + (1 - alpha) * plate, the alpha is supervised by the person mask (LossWeights.mask),
and the previous frame it is conditioned on is the first output's colour re-cut to the second
frame's window, as at transfer. The temporal discriminator sees the first frame re-cut likewise.

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
from .networks import split_alpha
from .window_warp import recut, recut_theta


class PairGenerator(nn.Module):
    """Both frames of a pair in one forward (one DDP forward per step): the first from a zero
    previous frame, the second conditioned on the first's output."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, label_prev: torch.Tensor, label_cur: torch.Tensor,
                theta: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The raw outputs (colour, plus alpha with predict_alpha) of both frames; `theta` re-cuts
        the first frame's colour into the second frame's window (person mode)."""
        out_prev = self.generator(label_prev, None)
        previous = split_alpha(out_prev, plain(self.generator).config)[0]
        if theta is not None:
            previous = recut(previous, theta)
        return out_prev, self.generator(label_cur, previous)


@dataclass
class PersonBatch:
    """Person mode: masks (N, 1, h, w) in [0, 1], plates (N, 3, h, w) in [-1, 1] of both frames, and
    theta (N, 2, 3): the first frame's window re-cut to the second's (window_warp.recut_theta)."""

    mask_prev: torch.Tensor
    mask_cur: torch.Tensor
    plate_prev: torch.Tensor
    plate_cur: torch.Tensor
    theta: torch.Tensor


@dataclass
class Batch:
    """A batch of pairs, (N, 3, h, w) in [-1, 1]; boxes: face boxes of the second frames."""

    label_prev: torch.Tensor
    label_cur: torch.Tensor
    real_prev: torch.Tensor
    real_cur: torch.Tensor
    boxes: Sequence[FaceBox] | None = None
    person: PersonBatch | None = None

    def tensors(self) -> list[torch.Tensor]:
        return [self.label_prev, self.label_cur, self.real_prev, self.real_cur]


def pair_batch(data, starts, device: torch.device, face_boxes: bool = False) -> Batch:
    """The pairs (starts, starts + 1) of a TrainingData as a Batch (person parts in person mode)."""
    label_prev, real_prev = data.tensors(starts, device)
    label_cur, real_cur = data.tensors(starts + 1, device)
    person = None
    if data.person:
        mask_prev, plate_prev = data.person_tensors(starts, device)
        mask_cur, plate_cur = data.person_tensors(starts + 1, device)
        theta = recut_theta(data.windows[starts], data.windows[starts + 1], device)
        person = PersonBatch(mask_prev, mask_cur, plate_prev, plate_cur, theta)
    boxes = data.face_boxes(starts + 1) if face_boxes else None
    return Batch(label_prev, label_cur, real_prev, real_cur, boxes=boxes, person=person)


def over_plate(output: torch.Tensor, plate: torch.Tensor | None, config) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(the frame, the alpha or None): a person-mode output composited over its plate window."""
    colour, alpha = split_alpha(output, config)
    if alpha is None or plate is None:
        return colour, alpha
    return plate + alpha * (colour - plate), alpha


def generate_pair(pair_generator: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(frame t-1, frame t, alphas of both stacked or None) as the discriminators see them."""
    person = batch.person
    out_prev, out_cur = pair_generator(batch.label_prev, batch.label_cur, person.theta if person else None)
    config = plain(plain(pair_generator).generator).config
    fake_prev, alpha_prev = over_plate(out_prev, person.plate_prev if person else None, config)
    fake_cur, alpha_cur = over_plate(out_cur, person.plate_cur if person else None, config)
    alphas = torch.cat([alpha_prev, alpha_cur]) if alpha_prev is not None and alpha_cur is not None else None
    return fake_prev, fake_cur, alphas


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
        person = batch.person
        with autocast(device, self.amp):
            fake_prev, fake_cur, alphas = generate_pair(self.pair_generator, batch)
            labels = torch.cat([batch.label_prev, batch.label_cur])
            real, fake = torch.cat([batch.real_prev, batch.real_cur]), torch.cat([fake_prev, fake_cur])
            masks = torch.cat([person.mask_prev, person.mask_cur]) if person else None
            # temporal pairs in one window: the first frame re-cut to the second's (person mode)
            label_prev, real_prev, fake_prev = ((recut(t, person.theta) for t in (batch.label_prev, batch.real_prev, fake_prev))
                                                if person else (batch.label_prev, batch.real_prev, fake_prev))
            # discriminators: real and detached fake in one pass each
            d_real, d_fake = _split(self.discriminator(torch.cat([pair_input(labels, real), pair_input(labels, fake.detach())])), 2 * n)
            real_t = temporal_input(label_prev, batch.label_cur, real_prev, batch.real_cur)
            fake_t = temporal_input(label_prev, batch.label_cur, fake_prev, fake_cur)
            t_real, t_fake = _split(self.temporal(torch.cat([real_t, fake_t.detach()])), n)
            loss_d = discriminator_loss(d_real, d_fake) + discriminator_loss(t_real, t_fake)
            # generator: adversarial terms through the plain discriminators (no DDP forward)
            loss_g, parts = generator_loss(plain(self.discriminator)(pair_input(labels, fake)), _detached(d_real), fake, real,
                                           self.weights, self.vgg, alpha=alphas, mask=masks)
            temporal_weights = dataclasses.replace(self.weights, vgg=0.0, l1=0.0, mask=0.0)
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
                generated = generate_pair(PairGenerator(self.body_generator), batch)[1]
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
