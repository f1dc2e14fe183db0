"""Continuing a finished model for a new budget (train(resume=True) when no checkpoint is left).

The run takes the model's own settings and its saved generators; the discriminators and optimisers
start afresh. The final checkpoint is not kept for this: it holds only the last stage's
discriminators (stage 1's are gone by then anyway), and Adam states would triple a finished model's
size on disk; fresh discriminators catch up within a few hundred steps, and the new budget's
learning-rate schedule starts again anyway. Steps, seconds and loss curves add to the earlier ones.
A preset with a local-enhancer stage continues that stage (its generator is the model's) and the
face stage; stage 1 is not redone.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from .. import registry
from ..errors import BAD_CHECKPOINT, BAD_PARAMS, EdnError
from .checkpoint import flat_differences
from .model_io import TrainedModel, load_trained_model
from .steps import plain
from .train_config import TrainConfig

TARGET_KEYS = ("hash", "start", "end")


def finished_model(folder: Path, target: dict[str, Any]) -> dict[str, Any] | None:
    """The model.json of the finished model in `folder`, or None when none finished there.
    BAD_CHECKPOINT when it was trained on other frames than `target` (hash, start, end)."""
    if not (Path(folder) / registry.MODEL_FILE).is_file():
        return None
    meta = registry.read_model_info(folder)
    saved = meta.get("target") or {}
    differences = flat_differences({k: target[k] for k in TARGET_KEYS}, {k: saved.get(k) for k in TARGET_KEYS})
    if differences:
        raise EdnError(BAD_CHECKPOINT, f"Model {Path(folder).name!r} was trained on other frames ({'; '.join(differences)}). "
                                       "Continue it with the same video and frame range, or train a new model under another name.")
    return meta


def stage_shares(config: TrainConfig, earlier: dict[str, Any] | None) -> dict[str, float]:
    """The stages a run trains and their budget shares: a continued model with a local stage skips stage 1."""
    shares = config.stage_shares()
    if earlier is not None and "local" in shares:
        shares.pop("body")
        total = sum(shares.values())
        shares = {stage: share / total for stage, share in shares.items()}
    return shares


def stage_steps(config: TrainConfig, earlier: dict[str, Any] | None, total: int) -> dict[str, int]:
    """`total` steps split among the stages this run trains (each gets at least one)."""
    shares = stage_shares(config, earlier)
    if "body" in shares:
        return config.stage_steps(total)
    if total < len(shares):
        raise EdnError(BAD_PARAMS, f"{total} training steps cannot cover the {len(shares)} stages {', '.join(shares)} "
                                   f"that continue this model; use --steps {len(shares)} or more")
    first, *rest = shares
    steps = {stage: max(1, round(total * shares[stage])) for stage in rest}
    return {first: total - sum(steps.values()), **steps}


def seconds(earlier: dict[str, Any] | None) -> float:
    """Training seconds the model had before this run (0 for a new model)."""
    return float(((earlier or {}).get("training") or {}).get("seconds") or 0.0)


class EarlierWeights:
    """The finished model's generators, loaded once, copied into a continued stage's fresh networks."""

    def __init__(self, folder: Path):
        self.model: TrainedModel = load_trained_model(folder, "cpu")

    def load(self, stage: str, networks: dict[str, nn.Module]) -> None:
        if stage == "face":
            if self.model.face_generator is not None:
                networks["face_generator"].load_state_dict(plain(self.model.face_generator).state_dict())
        else:
            networks["generator"].load_state_dict(plain(self.model.generator).state_dict())
