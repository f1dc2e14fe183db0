"""What a training run is: networks, losses, optimiser, stage budget shares, and the presets.

Resolution: `width` x `height` is the stage-1 (global generator) resolution. A preset with a
local-enhancer stage (`generator.local_enhancer`) then trains a generator for twice that size,
so the trained model's output is `output_size` = (2 * width, 2 * height).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Self

from ..errors import BAD_PARAMS, EdnError
from ..names import TRAIN_STAGE, sub_stage
from ..person.plate import PERSON
from ..person.target import LAYERS
from .configs import DictConfig, DiscriminatorConfig, FaceGeneratorConfig, GeneratorConfig
from .face import SIDE_MULTIPLE, face_side
from .losses import LossWeights
from .weight_init import INIT_SCHEMES

PRESETS = ("preview", "paper", "tiny")
AMP_MODES = ("bf16", "off")
STAGES = ("body", "local", "face")
STAGE_LABELS = {stage: sub_stage(TRAIN_STAGE, stage) for stage in STAGES}  # "train: body"...

BUDGET_HELP = (
    "--steps / --minutes bound the whole run; stage 1 (body) gets the rest after the local-enhancer "
    "stage (paper: 15%) and the face stage (15% with a local stage, 20% without)"
)

_NESTED = {
    "generator": GeneratorConfig,
    "face_generator": FaceGeneratorConfig,
    "discriminator": DiscriminatorConfig,
    "temporal_discriminator": DiscriminatorConfig,
    "face_discriminator": DiscriminatorConfig,
    "loss_weights": LossWeights,
    "face_loss_weights": LossWeights,
}


@dataclass(frozen=True)
class TrainConfig(DictConfig):
    """One training run's settings (saved with the model and every checkpoint).

    Budget shares: `local_share` and `face_share` are the fractions of the whole step or time
    budget given to the local-enhancer stage and the face stage; stage 1 gets the rest. The presets
    use body : local : face = 0.7 : 0.15 : 0.15 (paper) and body : face = 0.8 : 0.2 (no local stage).
    A stage that does not run (no local enhancer, face_stage off) gets no share.
    `useful_steps`: the fewest steps after which the preset's frames start to look like the person
    (preview: about 5 CPU-minutes here; before that they are coloured noise); a model trained
    fewer carries a warning (registry.training_warning), it is never refused.
    Learning rate: `lr` for the first half of each stage, then linear decay to 0 (pix2pixHD).
    `weight_init`: "default" (PyTorch's) or "normal" (pix2pixHD's N(0, 0.02)), see weight_init.py.
    `amp` and `channels_last` take effect on CUDA only; CPU training stays fp32 and contiguous.
    `layer`: "auto" (person mode when the target's background is static, else full-frame),
    "person" (the same check; a moving background still trains full-frame) or "full-frame". A run
    resolves it (person_config) before building networks; checkpoints keep the requested config.
    """

    preset: str = "preview"
    width: int = 256
    height: int = 128
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    face_generator: FaceGeneratorConfig = field(default_factory=FaceGeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    temporal_discriminator: DiscriminatorConfig = field(default_factory=lambda: DiscriminatorConfig(in_channels=12))
    face_discriminator: DiscriminatorConfig = field(default_factory=lambda: DiscriminatorConfig(num_d=1))
    loss_weights: LossWeights = field(default_factory=LossWeights)
    face_loss_weights: LossWeights = field(default_factory=LossWeights)
    lr: float = 2e-4
    weight_init: str = "default"
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 1
    local_share: float = 0.0
    face_share: float = 0.2
    face_stage: bool = True
    use_vgg: bool = True
    seed: int = 0
    amp: str = "bf16"
    channels_last: bool = True
    compile: bool = False
    default_steps: int = 3000
    checkpoint_every_steps: int = 500
    checkpoint_every_minutes: float = 10.0
    holdout_fraction: float = 0.02  # the clip's last 2% are never trained on: the held-out sample shows them
    smoothing: float = 1.0
    pose_model: str = "full"
    sample_count: int = 4
    useful_steps: int = 0  # below this many steps the model's frames are noise: it carries a warning (0: no floor)
    layer: str = "auto"

    def __post_init__(self):
        if self.layer not in LAYERS:
            raise ValueError(f"TrainConfig.layer must be one of {', '.join(LAYERS)}, got {self.layer!r}")
        if self.preset not in PRESETS:
            raise ValueError(f"TrainConfig.preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if self.weight_init not in INIT_SCHEMES:
            raise ValueError(f"TrainConfig.weight_init must be one of {', '.join(INIT_SCHEMES)}, got {self.weight_init!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"TrainConfig.amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.generator.local_enhancer and self.local_share <= 0:
            raise ValueError("TrainConfig.local_share must be above 0 when the generator has a local enhancer")
        if not self.generator.local_enhancer and self.local_share:
            raise ValueError("TrainConfig.local_share must be 0 without a local enhancer (generator.local_enhancer)")
        if not (0 <= self.local_share < 1 and 0 <= self.face_share < 1 and self.local_share + self.face_share < 1):
            raise ValueError(f"TrainConfig shares local={self.local_share}, face={self.face_share} must leave stage 1 a share")
        multiple = self.global_generator.size_multiple
        if self.width % multiple or self.height % multiple or self.width < multiple or self.height < multiple:
            raise ValueError(f"TrainConfig size {self.width}x{self.height} must be a positive multiple of {multiple}")
        if self.face_generator.size_multiple > SIDE_MULTIPLE:
            raise ValueError(f"FaceGeneratorConfig.n_downsample must be at most 4 (face crops are multiples of {SIDE_MULTIPLE} px)")
        if self.batch_size < 1 or self.default_steps < 1 or self.checkpoint_every_steps < 1 or self.sample_count < 0:
            raise ValueError("TrainConfig batch_size, default_steps and checkpoint_every_steps must be positive")
        if not 0 <= self.holdout_fraction < 1:
            raise ValueError(f"TrainConfig.holdout_fraction must lie in [0, 1), got {self.holdout_fraction}")
        if self.discriminator.in_channels != 2 * 3 or self.temporal_discriminator.in_channels != 4 * 3:
            raise ValueError("TrainConfig discriminators take 6 (label + frame) and 12 (two labels + two frames) channels")

    @property
    def global_generator(self) -> GeneratorConfig:
        """Stage 1's generator: the global generator alone, at width x height."""
        return dataclasses.replace(self.generator, local_enhancer=False)

    @property
    def output_size(self) -> tuple[int, int]:
        """(w, h) of the trained model's frames: twice width x height with a local enhancer."""
        factor = 2 if self.generator.local_enhancer else 1
        return (self.width * factor, self.height * factor)

    @property
    def face_side(self) -> int:
        """Side of the square face crop at the output resolution: a quarter of the height, as EDN's
        128 px boxes in 512 px high frames (face.face_side's reference is half the height)."""
        return face_side_for_height(self.output_size[1])

    def stage_shares(self) -> dict[str, float]:
        """Fraction of the run's budget for each stage that runs, in order."""
        shares = {"body": 0.0}
        if self.generator.local_enhancer:
            shares["local"] = self.local_share
        if self.face_stage:
            shares["face"] = self.face_share
        shares["body"] = 1.0 - sum(shares.values())
        return shares

    def stage_steps(self, total: int) -> dict[str, int]:
        """Split `total` steps among the stages in their shares (every running stage gets >= 1)."""
        shares = self.stage_shares()
        if total < len(shares):
            raise EdnError(BAD_PARAMS, f"{total} training steps cannot cover the {len(shares)} stages {', '.join(shares)}; "
                                       f"use --steps {len(shares)} or more")
        steps = {name: max(1, round(total * share)) for name, share in shares.items() if name != "body"}
        steps = {"body": total - sum(steps.values()), **steps}
        return steps

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"TrainConfig has no field(s) {', '.join(unknown)}; it was written by a different edn version")
        values = dict(data)
        for name, kind in _NESTED.items():
            if isinstance(values.get(name), dict):
                values[name] = kind.from_dict(values[name])
        return cls(**values)


def check_budget(steps: int | None, minutes: float | None) -> None:
    """BAD_PARAMS unless the run has at most one budget, a whole number of steps or positive minutes."""
    if steps is not None and minutes is not None:
        raise EdnError(BAD_PARAMS, "Give a step budget or a time budget, not both (--steps or --minutes).")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise EdnError(BAD_PARAMS, f"steps={steps!r} must be a whole number of at least 1.")
    if minutes is not None and not (isinstance(minutes, int | float) and minutes > 0):
        raise EdnError(BAD_PARAMS, f"minutes={minutes!r} must be a positive number.")


PERSON_MASK_WEIGHT = 10.0  # the alpha's L1 to the person mask (measured with the colour L1 at 10 and at 30)


def person_config(config: TrainConfig) -> TrainConfig:
    """The config a person-mode run trains: a square window with the same or fewer pixels (so the
    same or fewer generator FLOPs: the networks are fully convolutional) as the preset's frame,
    the generator predicting alpha, and the mask loss on. A standing person with arms stretched
    out fits a square best: at 2:1 the window would be the whole frame (subject 4), at 1:2 the
    outstretched arms would need a window twice as tall as the person."""
    multiple = config.global_generator.size_multiple
    side = max(multiple, int((config.width * config.height) ** 0.5) // multiple * multiple)
    weights = config.loss_weights
    if not weights.mask:
        weights = dataclasses.replace(weights, mask=PERSON_MASK_WEIGHT)
    return dataclasses.replace(config, width=side, height=side, layer=PERSON, loss_weights=weights,
                               generator=dataclasses.replace(config.generator, predict_alpha=True))


def face_side_for_height(height: int) -> int:
    """A quarter of the frame height, a multiple of 16 px, at least 32 px (EDN: 128 of 512)."""
    return face_side(height // 2)


def fit_width(height: int, aspect: float, multiple: int) -> int:
    """The width for `height` closest to the target's aspect (w / h), a multiple of `multiple`."""
    return max(multiple, int(round(height * aspect / multiple)) * multiple)


def _preset_fields(preset: str) -> dict[str, Any]:
    if preset == "paper":
        # pix2pixHD / EDN: 512x256 global generator, then the local enhancer to 1024x512.
        return dict(
            height=256,
            generator=GeneratorConfig(ngf=64, n_downsample=4, n_blocks=9, local_enhancer=True, n_blocks_local=3),
            face_generator=FaceGeneratorConfig(ngf=32, n_downsample=3, n_blocks=5),
            discriminator=DiscriminatorConfig(in_channels=6, ndf=64, n_layers=3, num_d=2),
            temporal_discriminator=DiscriminatorConfig(in_channels=12, ndf=64, n_layers=3, num_d=2),
            face_discriminator=DiscriminatorConfig(in_channels=6, ndf=64, n_layers=3, num_d=1),
            weight_init="normal", local_share=0.15, face_share=0.15,
            default_steps=150_000, checkpoint_every_steps=2000, useful_steps=20_000,
        )
    if preset == "preview":
        # CPU-friendly: ngf 16 with 3 halvings and 4 blocks generates a 256x128 frame in well under
        # 60 ms on two cores. Short CPU runs converge faster with an L1 term (paper relies on VGG);
        # measured on subject 4, 10 CPU-minutes (bench/results/quality.json "tuning"): pix2pixHD's
        # init, L1 30 rather than 10 and lr 4e-4 rather than 2e-4 each raised held-out SSIM.
        return dict(
            height=128, weight_init="normal", lr=4e-4,
            generator=GeneratorConfig(ngf=16, n_downsample=3, n_blocks=4),
            face_generator=FaceGeneratorConfig(ngf=16, n_downsample=2, n_blocks=3),
            discriminator=DiscriminatorConfig(in_channels=6, ndf=16, n_layers=3, num_d=2),
            temporal_discriminator=DiscriminatorConfig(in_channels=12, ndf=16, n_layers=2, num_d=1),
            face_discriminator=DiscriminatorConfig(in_channels=6, ndf=16, n_layers=2, num_d=1),
            loss_weights=LossWeights(l1=30.0), face_loss_weights=LossWeights(l1=10.0),
            local_share=0.0, face_share=0.2, default_steps=3000, checkpoint_every_steps=250, useful_steps=500,
        )
    if preset == "tiny":
        # For tests only: a few thousand parameters, frames 64 px high; useless images.
        return dict(
            height=64,
            generator=GeneratorConfig(ngf=8, n_downsample=2, n_blocks=1),
            face_generator=FaceGeneratorConfig(ngf=8, n_downsample=2, n_blocks=1),
            discriminator=DiscriminatorConfig(in_channels=6, ndf=8, n_layers=2, num_d=1),
            temporal_discriminator=DiscriminatorConfig(in_channels=12, ndf=8, n_layers=2, num_d=1),
            face_discriminator=DiscriminatorConfig(in_channels=6, ndf=8, n_layers=2, num_d=1),
            loss_weights=LossWeights(vgg=0.0, l1=10.0), face_loss_weights=LossWeights(vgg=0.0, l1=10.0),
            use_vgg=False, local_share=0.0, face_share=0.2, default_steps=20, checkpoint_every_steps=10, sample_count=2,
            useful_steps=10,
            holdout_fraction=0.1,  # test clips are a few dozen frames: keep some for the held-out sample
        )
    raise EdnError(BAD_PARAMS, f"Training preset {preset!r} is unknown; choose one of preview (CPU-friendly, 128 px high) "
                               "or paper (512 px high, needs a GPU).")


def preset_config(preset: str, target_size: tuple[int, int], **overrides: Any) -> TrainConfig:
    """The preset's config for a target video of `target_size` (w, h): the preset fixes the
    height, the width follows the target's aspect (portrait, square or landscape), rounded to a
    multiple of the generator's size_multiple. `overrides` replace any TrainConfig field (nested
    configs as dataclasses or dicts); an explicit width/height override wins over the aspect."""
    fields = _preset_fields(preset)
    width, height = target_size
    if width <= 0 or height <= 0:
        raise EdnError(BAD_PARAMS, f"target size {width}x{height} is not a frame size")
    for name, value in list(overrides.items()):
        if name in _NESTED and isinstance(value, dict):
            base = fields.get(name) or getattr(TrainConfig(), name)
            overrides[name] = dataclasses.replace(base, **value)
    fields.update(overrides)
    fields["preset"] = preset
    generator: GeneratorConfig = fields["generator"]
    multiple = dataclasses.replace(generator, local_enhancer=False).size_multiple
    fields.setdefault("width", fit_width(fields["height"], width / height, multiple))
    try:
        return TrainConfig(**fields)
    except (TypeError, ValueError) as error:
        raise EdnError(BAD_PARAMS, f"training settings are invalid: {error}") from error
