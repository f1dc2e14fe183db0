"""PatchGAN discriminators (pix2pixHD): the multi-scale image discriminator, EDN's temporal
discriminator on consecutive frame pairs, and the face discriminator.

Every discriminator returns the output of every layer of every scale,
`[[layer_1, ..., layer_n, prediction] for each scale]`, finest scale first, so the losses can do
feature matching on the intermediate layers and LSGAN on the last one.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .blocks import HalfResolution, norm_layer
from .configs import DiscriminatorConfig

Features = list[list[torch.Tensor]]

_KERNEL = 4
_PADDING = 2  # pix2pixHD's ceil((4 - 1) / 2): each layer keeps a border so small inputs still work
_MAX_CHANNELS = 512


class NLayerDiscriminator(nn.Module):
    """A PatchGAN: n_layers stride-2 convolutions, one stride-1, then a 1-channel patch score map."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "instance", spectral_norm: bool = False):
        super().__init__()

        def conv(cin: int, cout: int, stride: int) -> nn.Module:
            layer = nn.Conv2d(cin, cout, kernel_size=_KERNEL, stride=stride, padding=_PADDING)
            return _spectral_norm(layer) if spectral_norm else layer

        layers = [nn.Sequential(conv(in_channels, ndf, 2), nn.LeakyReLU(0.2))]
        channels = ndf
        for index in range(1, n_layers + 1):
            previous, channels = channels, min(channels * 2, _MAX_CHANNELS)
            stride = 2 if index < n_layers else 1
            layers.append(nn.Sequential(conv(previous, channels, stride), norm_layer(norm, channels), nn.LeakyReLU(0.2)))
        layers.append(nn.Sequential(conv(channels, 1, 1)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x)
        return outputs


class MultiscaleDiscriminator(nn.Module):
    """num_d PatchGANs, each seeing the input at half the resolution of the previous one: the
    coarse ones judge global structure, the fine one texture."""

    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        self.config = config
        self.scales = nn.ModuleList(
            NLayerDiscriminator(config.in_channels, config.ndf, config.n_layers, config.norm, config.spectral_norm)
            for _ in range(config.num_d)
        )
        self.downsample = HalfResolution()

    def forward(self, x: torch.Tensor) -> Features:
        if x.shape[1] != self.config.in_channels:
            raise ValueError(f"discriminator expects {self.config.in_channels} input channels, got {x.shape[1]}")
        results = []
        for index, scale in enumerate(self.scales):
            if index:
                x = self.downsample(x)
            results.append(scale(x))
        return results


def pair_input(label: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """The conditional discriminator's input: the label image, then the (real or generated) frame."""
    return torch.cat([label, image], dim=1)


def temporal_input(label_prev: torch.Tensor, label_cur: torch.Tensor, frame_prev: torch.Tensor, frame_cur: torch.Tensor) -> torch.Tensor:
    """The temporal discriminator's input, channels in this order:
    [label t-1, label t, frame t-1, frame t] (EDN: real pairs of frames vs generated pairs)."""
    return torch.cat([label_prev, label_cur, frame_prev, frame_cur], dim=1)


class FaceDiscriminator(MultiscaleDiscriminator):
    """A PatchGAN on (face crop of the label, face crop of the real or refined frame)."""

    def forward(self, label_crop: torch.Tensor, image_crop: torch.Tensor) -> Features:  # type: ignore[override]
        return super().forward(pair_input(label_crop, image_crop))


def define_discriminator(in_channels: int, ndf: int = 64, n_layers: int = 3, num_d: int = 2, *,
                         norm: str = "instance", spectral_norm: bool = False) -> MultiscaleDiscriminator:
    """The frame discriminator takes pair_input(label, frame): in_channels = label + image channels."""
    return MultiscaleDiscriminator(DiscriminatorConfig(in_channels, ndf, n_layers, num_d, norm, spectral_norm))


def define_temporal_discriminator(label_channels: int = 3, image_channels: int = 3, ndf: int = 64, n_layers: int = 3,
                                  num_d: int = 2, *, norm: str = "instance", spectral_norm: bool = False) -> MultiscaleDiscriminator:
    """Takes temporal_input(...): two labels and two frames."""
    return define_discriminator(2 * (label_channels + image_channels), ndf, n_layers, num_d, norm=norm, spectral_norm=spectral_norm)


def define_face_discriminator(label_channels: int = 3, image_channels: int = 3, ndf: int = 64, n_layers: int = 3,
                              num_d: int = 1, *, norm: str = "instance", spectral_norm: bool = False) -> FaceDiscriminator:
    return FaceDiscriminator(DiscriminatorConfig(label_channels + image_channels, ndf, n_layers, num_d, norm, spectral_norm))


def discriminator_from_config(config: DiscriminatorConfig) -> MultiscaleDiscriminator:
    """Rebuild a frame or temporal discriminator from a checkpoint's config."""
    return MultiscaleDiscriminator(config)
