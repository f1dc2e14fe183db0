"""Training checkpoints: everything a run needs to continue exactly where it stopped.

One file, `<model folder>/training/checkpoint.pt`, written atomically (temp + rename), holding the
networks (state + the config each was built with), the optimisers, the position in the stage
plan (stage, step in stage, global step, training seconds so far, the budget), the random states
of torch, numpy, Python and the pair sampler, and the loss history. The learning-rate schedule is
a function of the position in the stage, so restoring the position restores the schedule.
Only plain types and tensors are stored, so it loads with torch.load(weights_only=True).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_file
from ..errors import BAD_CHECKPOINT, EdnError
from .configs import load_network_state
from .steps import plain

CHECKPOINT_FORMAT = 1
CHECKPOINT_FILE = "checkpoint.pt"
MAX_HISTORY = 2000


def checkpoint_path(model_folder: Path) -> Path:
    return Path(model_folder) / "training" / CHECKPOINT_FILE


@dataclass
class RunPosition:
    """Where a run is: `stage` (body, local, face, or done), steps done in it and overall,
    training seconds so far, the budget (steps or minutes) and its split into stages."""

    stage: str
    stage_step: int = 0
    step: int = 0
    elapsed_s: float = 0.0
    total_steps: int | None = None
    minutes: float | None = None
    plan: dict[str, int] = field(default_factory=dict)
    stage_started_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class LossHistory:
    """Per-step losses; beyond MAX_HISTORY entries neighbours are averaged, so a long run keeps
    its whole curve at a bounded size."""

    def __init__(self, entries: list[dict[str, Any]] | None = None):
        self.entries = list(entries or [])

    def add(self, step: int, stage: str, losses: dict[str, float]) -> None:
        self.entries.append({"step": step, "stage": stage, **losses})
        if len(self.entries) > MAX_HISTORY:
            self.entries = [self._merge(self.entries[i:i + 2]) for i in range(0, len(self.entries), 2)]

    @staticmethod
    def _merge(pair: list[dict[str, Any]]) -> dict[str, Any]:
        if len(pair) == 1 or pair[0]["stage"] != pair[1]["stage"]:
            return pair[-1]
        merged = {"step": pair[1]["step"], "stage": pair[1]["stage"]}
        for key in pair[1]:
            if key not in merged and key in pair[0]:
                merged[key] = (pair[0][key] + pair[1][key]) / 2.0
        return merged


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    np_state["state"] = {"key": np_state["state"]["key"].tolist(), "pos": int(np_state["state"]["pos"])}
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np_state,
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np_state = dict(state["numpy"])
    np_state["state"] = {"key": np.asarray(np_state["state"]["key"], dtype=np.uint32), "pos": np_state["state"]["pos"]}
    np.random.set_state(np_state)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def network_entry(module: nn.Module) -> dict[str, Any]:
    inner = plain(module)
    return {"config": inner.config.to_dict(), "state": {k: v.detach().cpu().clone() for k, v in inner.state_dict().items()}}


def save_checkpoint(path: Path, *, config: dict[str, Any], position: RunPosition, networks: dict[str, nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], sampler_state: dict[str, Any], history: LossHistory,
                    extra: dict[str, Any] | None = None) -> Path:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": config,
        "position": position.to_dict(),
        "networks": {name: network_entry(module) for name, module in networks.items()},
        "optimizers": {name: optimizer.state_dict() for name, optimizer in optimizers.items()},
        "rng": {**rng_state(), "sampler": sampler_state},
        "losses": history.entries,
        "extra": extra or {},
    }
    with atomic_file(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint's contents (tensors on the CPU). Raises BAD_CHECKPOINT when unreadable."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise EdnError(BAD_CHECKPOINT, f"There is no training checkpoint at {path}; start a new run without --resume.") from None
    except Exception as error:  # torch raises many types for damaged files
        raise EdnError(BAD_CHECKPOINT, f"The training checkpoint {path} cannot be read ({error}); delete the model's "
                                       "folder and train again, or train under another name.") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise EdnError(BAD_CHECKPOINT, f"{path} is not an edn training checkpoint of format {CHECKPOINT_FORMAT}; "
                                       "train again under another name.")
    return payload


def flat_differences(run: dict[str, Any], saved: dict[str, Any], prefix: str = "") -> list[str]:
    """'generator.ngf: this run has 16, the checkpoint has 8' for every differing (nested) field."""
    out = []
    for key in sorted(set(run) | set(saved)):
        a, b = run.get(key), saved.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += flat_differences(a, b, f"{prefix}{key}.")
        elif a != b and not (isinstance(a, list | tuple) and isinstance(b, list | tuple) and list(a) == list(b)):
            out.append(f"{prefix}{key}: this run has {a!r}, the checkpoint has {b!r}")
    return out


def restore_networks(payload: dict[str, Any], networks: dict[str, nn.Module], path: Path) -> None:
    """Load every saved network into the freshly built one of the same name."""
    saved = payload["networks"]
    for name, module in networks.items():
        if name not in saved:
            raise EdnError(BAD_CHECKPOINT, f"{path} has no weights for the {name} network of stage "
                                           f"{payload['position']['stage']!r}; it is damaged. Train again under another name.")
        try:
            load_network_state(plain(module), saved[name]["state"], saved[name]["config"])
        except ValueError as error:
            raise EdnError(BAD_CHECKPOINT, f"{path}: {name}: {error}. Resume with the settings it was trained with, "
                                           "or train under another name.") from error


def restore_optimizers(payload: dict[str, Any], optimizers: dict[str, torch.optim.Optimizer], path: Path) -> None:
    for name, optimizer in optimizers.items():
        try:
            optimizer.load_state_dict(payload["optimizers"][name])
        except (KeyError, ValueError) as error:
            raise EdnError(BAD_CHECKPOINT, f"{path}: the {name} optimiser state does not fit ({error}); "
                                           "train again under another name.") from error
