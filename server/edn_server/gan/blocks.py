"""The small layers the generators and discriminators are built from (pix2pixHD's building blocks).

Every block is a plain nn.Module of standard layers, so models work in channels_last memory
format and under torch.compile without relying on it.
"""
from __future__ import annotations

import torch
from torch import nn

NORMS = ("instance", "batch", "none")
UPSAMPLES = ("transpose", "nearest")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """pix2pixHD's instance norm has no affine parameters and no running statistics."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {kind!r}")


class StemBlock(nn.Sequential):
    """7x7 convolution on a reflect-padded input: wide receptive field without border artefacts."""

    def __init__(self, in_channels: int, out_channels: int, norm: str):
        super().__init__(
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, out_channels, kernel_size=7),
            norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
        )


class DownBlock(nn.Sequential):
    """Halve the resolution with a stride-2 3x3 convolution."""

    def __init__(self, in_channels: int, out_channels: int, norm: str):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1),
            norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
        )


class UpBlock(nn.Sequential):
    """Double the resolution: pix2pixHD's transposed convolution, or nearest upsampling + 3x3
    convolution, which avoids the checkerboard pattern transposed convolutions can leave."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, mode: str = "transpose"):
        if mode == "transpose":
            up = [nn.ConvTranspose2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, output_padding=1)]
        elif mode == "nearest":
            up = [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)]
        else:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLES)}, got {mode!r}")
        super().__init__(*up, norm_layer(norm, out_channels), nn.ReLU(inplace=True))


class ResnetBlock(nn.Module):
    """Two reflect-padded 3x3 convolutions with a skip connection; keeps channels and resolution."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3),
            norm_layer(norm, channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3),
            norm_layer(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ColourAlpha(nn.Module):
    """tanh on the colour channels ([-1, 1]) and a sigmoid on the last, the alpha ([0, 1])."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.tanh(x[:, :-1]), torch.sigmoid(x[:, -1:])], dim=1)


class ImageHead(nn.Sequential):
    """7x7 convolution to image channels and tanh, so outputs lie in [-1, 1]; with `alpha`, one
    more channel in [0, 1]. Same parameter names either way (the activation has none)."""

    def __init__(self, in_channels: int, out_channels: int, alpha: bool = False):
        super().__init__(nn.ReflectionPad2d(3), nn.Conv2d(in_channels, out_channels + (1 if alpha else 0), kernel_size=7),
                         ColourAlpha() if alpha else nn.Tanh())


class HalfResolution(nn.AvgPool2d):
    """pix2pixHD's 2x downsampling between scales; padded pixels do not darken the border."""

    def __init__(self):
        super().__init__(kernel_size=3, stride=2, padding=1, count_include_pad=False)


def check_spatial_multiple(x: torch.Tensor, multiple: int, what: str) -> None:
    """Generators need sizes that survive every halving and doubling exactly."""
    height, width = x.shape[-2:]
    if height % multiple or width % multiple:
        raise ValueError(
            f"{what} input is {width}x{height} pixels; width and height must be multiples of {multiple} "
            f"(resize or pad the frames, or use fewer downsampling layers)"
        )


def same_memory_format(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """New tensors (the zero previous frame) follow the input's layout, so concatenation keeps channels_last."""
    if like.dim() == 4 and like.is_contiguous(memory_format=torch.channels_last) and not like.is_contiguous():
        return t.contiguous(memory_format=torch.channels_last)
    return t
