"""The generators (pix2pixHD's global generator and local enhancer, conditioned on the previous
frame as in Everybody Dance Now, and EDN's face residual generator), their factories, checkpoint
loading and a FLOP counter. Discriminators and face-box helpers live in their own modules and
are re-exported here, so `networks` is the one place to import models from.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .blocks import (
    DownBlock,
    HalfResolution,
    ImageHead,
    ResnetBlock,
    StemBlock,
    UpBlock,
    check_spatial_multiple,
    same_memory_format,
)
from .configs import DictConfig, DiscriminatorConfig, FaceGeneratorConfig, GeneratorConfig, load_network_state
from .discriminators import (
    FaceDiscriminator,
    MultiscaleDiscriminator,
    NLayerDiscriminator,
    define_discriminator,
    define_face_discriminator,
    define_temporal_discriminator,
    discriminator_from_config,
    pair_input,
    temporal_input,
)
from .face import FaceBox, crop, face_box, paste

__all__ = [
    "DiscriminatorConfig", "FaceBox", "FaceDiscriminator", "FaceGeneratorConfig", "FaceResidualGenerator",
    "GeneratorConfig", "GlobalGenerator", "LocalEnhancer", "MultiscaleDiscriminator", "NLayerDiscriminator",
    "ResnetBlock", "crop", "define_discriminator", "define_face_discriminator", "define_face_generator",
    "define_generator", "define_temporal_discriminator", "discriminator_from_config", "face_box",
    "generator_gflops", "load_generator_state", "pair_input", "paste", "split_alpha", "temporal_input",
]


def generator_input(config: GeneratorConfig, label: torch.Tensor, previous_frame: torch.Tensor | None) -> torch.Tensor:
    """The label image, then the previous generated frame (zeros for a sequence's first frame)."""
    if label.dim() != 4 or label.shape[1] != config.label_channels:
        raise ValueError(f"generator expects labels shaped (N, {config.label_channels}, H, W), got {tuple(label.shape)}")
    if not config.use_previous_frame:
        if previous_frame is not None:
            raise ValueError("this generator was built with use_previous_frame=False; do not pass a previous frame")
        return label
    expected = (label.shape[0], config.image_channels, *label.shape[2:])
    if previous_frame is None:
        previous_frame = same_memory_format(label.new_zeros(expected), label)
    elif tuple(previous_frame.shape) != expected:
        raise ValueError(f"previous frame must be shaped {expected} like the label, got {tuple(previous_frame.shape)}")
    return torch.cat([label, previous_frame], dim=1)


class GlobalGenerator(nn.Module):
    """pix2pixHD's global generator: 7x7 stem, n_downsample stride-2 convolutions, n_blocks
    residual blocks at the bottleneck, n_downsample upsamplings, 7x7 head with tanh.

    `with_head=False` builds only the feature trunk (the local enhancer adds its own head).
    """

    def __init__(self, config: GeneratorConfig, with_head: bool = True):
        super().__init__()
        self.config = config
        ngf, norm = config.ngf, config.norm
        layers: list[nn.Module] = [StemBlock(config.in_channels, ngf, norm)]
        for i in range(config.n_downsample):
            layers.append(DownBlock(ngf * 2**i, ngf * 2 ** (i + 1), norm))
        bottleneck = ngf * 2**config.n_downsample
        layers += [ResnetBlock(bottleneck, norm) for _ in range(config.n_blocks)]
        for i in reversed(range(config.n_downsample)):
            layers.append(UpBlock(ngf * 2 ** (i + 1), ngf * 2**i, norm, config.upsample))
        self.body = nn.Sequential(*layers)
        self.head = ImageHead(ngf, config.image_channels, config.predict_alpha) if with_head else None

    def forward(self, label: torch.Tensor, previous_frame: torch.Tensor | None = None) -> torch.Tensor:
        x = generator_input(self.config, label, previous_frame)
        check_spatial_multiple(x, self.config.size_multiple, "generator")
        features = self.body(x)
        return features if self.head is None else self.head(features)


class LocalEnhancer(nn.Module):
    """pix2pixHD's local enhancer for twice the global generator's resolution: the global trunk
    runs on the half-resolution input; its last features are added to the full-resolution
    front-end's, then local residual blocks, one upsampling and the image head."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        ngf, local_ngf, norm = config.ngf, config.ngf // 2, config.norm
        global_config = GeneratorConfig(**{**config.to_dict(), "local_enhancer": False})
        self.global_generator = GlobalGenerator(global_config, with_head=False)
        self.downsample = HalfResolution()
        self.local_front = nn.Sequential(StemBlock(config.in_channels, local_ngf, norm), DownBlock(local_ngf, ngf, norm))
        self.local_back = nn.Sequential(
            *[ResnetBlock(ngf, norm) for _ in range(config.n_blocks_local)],
            UpBlock(ngf, local_ngf, norm, config.upsample),
        )
        self.head = ImageHead(local_ngf, config.image_channels, config.predict_alpha)

    def forward(self, label: torch.Tensor, previous_frame: torch.Tensor | None = None) -> torch.Tensor:
        x = generator_input(self.config, label, previous_frame)
        check_spatial_multiple(x, self.config.size_multiple, "local enhancer")
        global_features = self.global_generator.body(self.downsample(x))
        return self.head(self.local_back(self.local_front(x) + global_features))

    def load_global_state(self, state: dict[str, torch.Tensor], config: GeneratorConfig | dict[str, Any]) -> None:
        """Start from a half-resolution GlobalGenerator checkpoint (pix2pixHD's coarse-to-fine
        training); its image head is not used here and is dropped."""
        found = config if isinstance(config, GeneratorConfig) else GeneratorConfig.from_dict(config)
        # the local-branch fields do not shape the global trunk
        found = dataclasses.replace(found, local_enhancer=False, n_blocks_local=self.global_generator.config.n_blocks_local)
        trunk = {k: v for k, v in state.items() if not k.startswith("head.")}
        load_network_state(self.global_generator, trunk, found)


class FaceResidualGenerator(nn.Module):
    """EDN's face GAN generator: from the label's face crop and the generated frame's face crop
    it predicts a tanh-bounded residual; the refined crop is crop + residual, clamped to [-1, 1].

    The last convolution starts at zero, so an untrained refiner returns the crop unchanged.
    """

    def __init__(self, config: FaceGeneratorConfig):
        super().__init__()
        self.config = config
        self.net = GlobalGenerator(GeneratorConfig(
            label_channels=config.label_channels, image_channels=config.image_channels, ngf=config.ngf,
            n_downsample=config.n_downsample, n_blocks=config.n_blocks, norm=config.norm,
            use_previous_frame=True, upsample=config.upsample,
        ))
        self.start_as_identity()

    def start_as_identity(self) -> None:
        """Zero the last convolution: an untrained refiner returns the crop unchanged."""
        head_conv = self.net.head[1]
        nn.init.zeros_(head_conv.weight)
        nn.init.zeros_(head_conv.bias)

    def residual(self, label_crop: torch.Tensor, image_crop: torch.Tensor) -> torch.Tensor:
        if label_crop.shape[-2:] != image_crop.shape[-2:]:
            raise ValueError(f"face crops differ in size: label {tuple(label_crop.shape[-2:])}, image {tuple(image_crop.shape[-2:])}")
        return self.net(label_crop, image_crop)

    def forward(self, label_crop: torch.Tensor, image_crop: torch.Tensor) -> torch.Tensor:
        return torch.clamp(image_crop + self.residual(label_crop, image_crop), -1.0, 1.0)


def split_alpha(output: torch.Tensor, config: GeneratorConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(colour in [-1, 1], alpha in [0, 1] or None) of a generator's output. The colour is what
    the next frame gets as its previous frame."""
    if not config.predict_alpha:
        return output, None
    return output[:, :config.image_channels], output[:, config.image_channels:]


def define_generator(config: GeneratorConfig) -> nn.Module:
    """GlobalGenerator, or LocalEnhancer when config.local_enhancer (twice the resolution)."""
    return LocalEnhancer(config) if config.local_enhancer else GlobalGenerator(config)


def define_face_generator(config: FaceGeneratorConfig | None = None) -> FaceResidualGenerator:
    return FaceResidualGenerator(config or FaceGeneratorConfig())


def load_generator_state(model: nn.Module, state: dict[str, torch.Tensor], config: DictConfig | dict[str, Any]) -> None:
    """Load a checkpoint's state dict, saved with `config`, into a generator built by a factory.
    Raises ValueError naming the config fields that differ (e.g. 'ngf: model has 64, checkpoint has 32')."""
    load_network_state(model, state, config)


def generator_gflops(module: nn.Module, input_shape: Sequence[int]) -> float:
    """GFLOPs of one forward pass on a zero input of `input_shape` (batch included): multiply-adds
    of every convolution and transposed convolution, times two. Norms and activations are ignored
    (a few percent at most)."""
    macs = 0

    def count(layer: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal macs
        kernel = layer.weight.shape[2] * layer.weight.shape[3]
        if isinstance(layer, nn.ConvTranspose2d):
            # every input pixel scatters a kernel-sized patch to each output channel
            macs += inputs[0].numel() * (layer.out_channels // layer.groups) * kernel
        else:
            macs += output.numel() * (layer.in_channels // layer.groups) * kernel

    handles = [m.register_forward_hook(count) for m in module.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    was_training = module.training
    try:
        parameter = next(module.parameters())
        module.eval()  # no batch-norm statistics updates from the zero input
        with torch.no_grad():
            module(torch.zeros(tuple(input_shape), device=parameter.device, dtype=parameter.dtype))
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    return 2.0 * macs / 1e9
