"""pix2pixHD's losses: least-squares GAN, discriminator feature matching, VGG perceptual loss,
plus an optional L1 reconstruction term.

Discriminator outputs use the layout of discriminators.py: one list per scale of every layer's
output, the last being the patch prediction.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .configs import DictConfig
from .discriminators import Features
from .vgg import LAYER_WEIGHTS, VGG19Features


def lsgan_loss(predictions: Features, target_is_real: bool) -> torch.Tensor:
    """Mean squared distance of every scale's patch prediction to 1 (real) or 0 (fake), summed
    over scales as pix2pixHD does."""
    target = 1.0 if target_is_real else 0.0
    return sum((F.mse_loss(scale[-1], torch.full_like(scale[-1], target)) for scale in predictions),
               start=predictions[0][-1].new_zeros(()))


def discriminator_loss(pred_real: Features, pred_fake: Features) -> torch.Tensor:
    """Half the discriminator's LSGAN loss on real plus on (detached) fake inputs."""
    return 0.5 * (lsgan_loss(pred_real, True) + lsgan_loss(pred_fake, False))


def feature_matching_loss(fake: Features, real: Features) -> torch.Tensor:
    """Mean L1 between the discriminator's intermediate features on generated and on real
    inputs (real ones detached): each of the n_layers + 1 layers weighted 4 / (n_layers + 1),
    each scale 1 / num_D, as pix2pixHD. Multiply by LossWeights.feature_matching (10)."""
    if len(fake) != len(real):
        raise ValueError(f"feature lists cover {len(fake)} and {len(real)} scales; pass outputs of the same discriminator")
    total = fake[0][-1].new_zeros(())
    for fake_scale, real_scale in zip(fake, real, strict=True):
        layer_weight = 4.0 / (len(fake_scale) - 1)
        for fake_layer, real_layer in zip(fake_scale[:-1], real_scale[:-1], strict=True):
            total = total + layer_weight * F.l1_loss(fake_layer, real_layer.detach())
    return total / len(fake)


def l1_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(fake, real.detach())


class VGGLoss(nn.Module):
    """pix2pixHD's perceptual loss: L1 between VGG19 relu*_1 features of generated and real
    frames, weighted 1/32 .. 1 from shallow to deep."""

    def __init__(self, vgg: VGG19Features):
        super().__init__()
        self.vgg = vgg

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        fake_features = self.vgg(fake)
        with torch.no_grad():
            real_features = self.vgg(real)
        return sum((w * F.l1_loss(f, r) for w, f, r in zip(LAYER_WEIGHTS, fake_features, real_features, strict=True)),
                   start=fake.new_zeros(()))


MASK_LOSSES = ("l1", "bce")


def mask_loss(alpha: torch.Tensor, mask: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """How far the predicted alpha (N, 1, h, w) in [0, 1] is from the person mask in [0, 1]:
    mean L1, or binary cross-entropy (sharper edges). Computed in fp32 (safe under autocast)."""
    if alpha.shape != mask.shape:
        raise ValueError(f"alpha {tuple(alpha.shape)} and mask {tuple(mask.shape)} differ in shape")
    alpha, mask = alpha.float(), mask.detach().float()
    if kind == "l1":
        return F.l1_loss(alpha, mask)
    if kind == "bce":
        alpha = alpha.clamp(1e-4, 1.0 - 1e-4)
        return -(mask * torch.log(alpha) + (1.0 - mask) * torch.log1p(-alpha)).mean()
    raise ValueError(f"mask loss must be one of {', '.join(MASK_LOSSES)}, got {kind!r}")


@dataclass(frozen=True)
class LossWeights(DictConfig):
    """pix2pixHD's defaults: GAN 1, feature matching 10, VGG 10; L1 off (EDN does not use it);
    the alpha's mask loss off (only generators with predict_alpha have one)."""

    gan: float = 1.0
    feature_matching: float = 10.0
    vgg: float = 10.0
    l1: float = 0.0
    mask: float = 0.0


def generator_loss(pred_fake: Features, pred_real: Features, fake: torch.Tensor, real: torch.Tensor,
                   weights: LossWeights = LossWeights(), vgg: VGGLoss | None = None,
                   alpha: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The generator's total loss for one discriminator and the weighted parts (for loss curves).
    `pred_real` are the discriminator's outputs on the real pair; the VGG term is skipped when
    `vgg` is None (weights unavailable); the mask term needs the predicted `alpha` and the `mask`."""
    parts = {"gan": weights.gan * lsgan_loss(pred_fake, True)}
    if weights.feature_matching:
        parts["feature_matching"] = weights.feature_matching * feature_matching_loss(pred_fake, pred_real)
    if weights.vgg and vgg is not None:
        parts["vgg"] = weights.vgg * vgg(fake, real)
    if weights.l1:
        parts["l1"] = weights.l1 * l1_loss(fake, real)
    if weights.mask and alpha is not None and mask is not None:
        parts["mask"] = weights.mask * mask_loss(alpha, mask)
    total = sum(parts.values(), start=fake.new_zeros(()))
    return total, {name: float(value.detach()) for name, value in parts.items()}
