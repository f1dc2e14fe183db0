"""Typed configurations of every network, saved beside the weights in checkpoints, and the
check that a checkpoint's weights belong to the network being loaded."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Self

from torch import nn

from .blocks import NORMS, UPSAMPLES


class DictConfig:
    """to_dict / from_dict for the config dataclasses (plain JSON-able values only)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {', '.join(unknown)}; the checkpoint was written by a different edn version")
        return cls(**data)


def _positive(owner: str, **values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}.{name} must be a positive integer, got {value!r}")


def _choice(owner: str, name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{owner}.{name} must be one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True)
class GeneratorConfig(DictConfig):
    """The per-target frame generator.

    `ngf` is the global generator's width; with `local_enhancer` the full-resolution branch uses
    ngf // 2 channels (pix2pixHD's 64 / 32), and the global generator is exactly the one a
    half-resolution stage-1 run trains, so its weights carry over.
    `predict_alpha` adds the person's alpha as one more output channel (colour in [-1, 1], alpha
    in [0, 1]); the previous-frame input stays colour only. Off in configs saved before it existed.
    """

    label_channels: int = 3
    image_channels: int = 3
    ngf: int = 64
    n_downsample: int = 4
    n_blocks: int = 9
    norm: str = "instance"
    use_previous_frame: bool = True
    local_enhancer: bool = False
    n_blocks_local: int = 3
    upsample: str = "transpose"
    predict_alpha: bool = False

    def __post_init__(self):
        _positive("GeneratorConfig", label_channels=self.label_channels, image_channels=self.image_channels,
                  ngf=self.ngf, n_downsample=self.n_downsample, n_blocks=self.n_blocks, n_blocks_local=self.n_blocks_local)
        _choice("GeneratorConfig", "norm", self.norm, NORMS)
        _choice("GeneratorConfig", "upsample", self.upsample, UPSAMPLES)
        if self.local_enhancer and self.ngf < 2:
            raise ValueError("GeneratorConfig.ngf must be at least 2 with local_enhancer (the local branch uses ngf // 2)")

    @property
    def in_channels(self) -> int:
        return self.label_channels + (self.image_channels if self.use_previous_frame else 0)

    @property
    def out_channels(self) -> int:
        return self.image_channels + (1 if self.predict_alpha else 0)

    @property
    def size_multiple(self) -> int:
        """Frame width and height must be multiples of this."""
        return 2 ** (self.n_downsample + (1 if self.local_enhancer else 0))


@dataclass(frozen=True)
class FaceGeneratorConfig(DictConfig):
    """The face residual generator: (label crop, generated crop) -> residual added to the crop."""

    label_channels: int = 3
    image_channels: int = 3
    ngf: int = 32
    n_downsample: int = 3
    n_blocks: int = 5
    norm: str = "instance"
    upsample: str = "transpose"

    def __post_init__(self):
        _positive("FaceGeneratorConfig", label_channels=self.label_channels, image_channels=self.image_channels,
                  ngf=self.ngf, n_downsample=self.n_downsample, n_blocks=self.n_blocks)
        _choice("FaceGeneratorConfig", "norm", self.norm, NORMS)
        _choice("FaceGeneratorConfig", "upsample", self.upsample, UPSAMPLES)

    @property
    def in_channels(self) -> int:
        return self.label_channels + self.image_channels

    @property
    def size_multiple(self) -> int:
        return 2**self.n_downsample


@dataclass(frozen=True)
class DiscriminatorConfig(DictConfig):
    """A multi-scale PatchGAN: `num_d` copies of an `n_layers` PatchGAN on ever halved inputs."""

    in_channels: int = 6
    ndf: int = 64
    n_layers: int = 3
    num_d: int = 2
    norm: str = "instance"
    spectral_norm: bool = False

    def __post_init__(self):
        _positive("DiscriminatorConfig", in_channels=self.in_channels, ndf=self.ndf, n_layers=self.n_layers, num_d=self.num_d)
        _choice("DiscriminatorConfig", "norm", self.norm, NORMS)


def config_differences(expected: DictConfig, found: DictConfig | dict[str, Any]) -> list[str]:
    """'field: model has X, checkpoint has Y' for every field that differs. A saved dict lacking
    fields added since (e.g. predict_alpha) has their defaults, as from_dict reads it."""
    if not isinstance(found, DictConfig):
        try:
            found = type(expected).from_dict(dict(found))
        except (TypeError, ValueError):
            pass  # unknown fields: compared as saved, so they are named below
    found_dict = found.to_dict() if isinstance(found, DictConfig) else dict(found)
    expected_dict = expected.to_dict()
    return [
        f"{name}: model has {expected_dict.get(name)!r}, checkpoint has {found_dict.get(name)!r}"
        for name in sorted(set(expected_dict) | set(found_dict))
        if expected_dict.get(name) != found_dict.get(name)
    ]


def load_network_state(model: nn.Module, state: dict[str, Any], config: DictConfig | dict[str, Any]) -> None:
    """Load `state` (a state dict saved with `config`) into `model`, which carries its own `.config`.

    Raises ValueError naming every config field that differs, instead of PyTorch's list of
    mismatched tensor shapes, which does not tell the user which setting to change.
    """
    model_config = getattr(model, "config", None)
    if not isinstance(model_config, DictConfig):
        raise TypeError(f"{type(model).__name__} has no .config; build it with the define_* factories")
    differences = config_differences(model_config, config)
    if differences:
        raise ValueError(
            f"the checkpoint was trained with a different {type(model_config).__name__} ({'; '.join(differences)}); "
            f"build the network from the checkpoint's config instead"
        )
    # Checked before loading so a bad checkpoint leaves the model untouched.
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshapen = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or misshapen:
        raise ValueError(
            f"the checkpoint's weights do not fit {type(model).__name__} although the configs agree "
            f"(missing: {', '.join(missing[:5]) or 'none'}; unexpected: {', '.join(unexpected[:5]) or 'none'}; "
            f"wrong shape: {', '.join(misshapen[:5]) or 'none'}); the checkpoint file is damaged or from an incompatible edn version"
        )
    model.load_state_dict(state)
