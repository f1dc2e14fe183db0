"""A trained target on disk: `model.json` (what it is) and `weights.pt` (the generators), in
`registry.models_dir(data_dir)/<name>/`, and loading it back for transfer and evaluation.

The generator's input is a label image at the model's resolution drawn from keypoints in the
target video's pixels: `TrainedModel.render_label` does exactly what the training data did.
"""
from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import registry
from ..atomic import atomic_file
from ..config import data_dir
from ..errors import BAD_MODEL, EdnError
from ..names import PLATE_FILE
from ..person.plate import FULL_FRAME, PERSON
from ..pose.normalize import PoseStats
from .configs import GeneratorConfig, load_network_state
from .face import FaceBox, face_box
from .face_check import face_decision
from .labels import model_keypoints, render_model_label
from .networks import define_face_generator, define_generator
from .train_config import TrainConfig

WEIGHTS_FILE = "weights.pt"
MODEL_FILE = registry.MODEL_FILE
WEIGHTS_FORMAT = 1


def edn_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("edn-server")
    except PackageNotFoundError:
        return "unknown"


@dataclass
class TrainedModel:
    """A loaded target: generators in eval mode on their device, plus what they were trained on.

    resolution: (w, h) of generated frames (the config's output_size).
    face_side: side of the face crop the face generator refines (None without a face stage).
    face_generator: the face stage's weights, loaded even where `face` marks it unused (training
        continues them); transfers run `face_refiner`.
    stats: the target's pose statistics (normalize source poses to them before rendering labels).
    info: the parsed model.json.
    mode: "person" (generates the person's colour and alpha in a window, composited over the plate)
        or "full-frame"; a model.json without `mode` (trained before the person layer) is full-frame.
    """

    name: str
    folder: Path
    config: TrainConfig
    stats: PoseStats
    generator: nn.Module
    face_generator: nn.Module | None
    face_side: int | None
    resolution: tuple[int, int]
    info: dict[str, Any] = field(default_factory=dict)
    mode: str = FULL_FRAME

    def plate(self) -> np.ndarray:
        """A person-mode model's background plate, (H, W, 3) uint8 RGB at the target's native size."""
        import cv2

        image = cv2.imread(str(self.folder / PLATE_FILE), cv2.IMREAD_COLOR)
        if image is None:
            raise EdnError(BAD_MODEL, f"{self.folder / PLATE_FILE} is missing or unreadable; the person-mode model "
                                      f"{self.name!r} needs its background plate. Train the model again.")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    @property
    def face(self) -> dict[str, Any]:
        """{"used": bool, "reason": str, ...}: whether transfers run the face refiner (face_check.py)."""
        return face_decision(self.info, self.face_generator is not None)

    @property
    def face_refiner(self) -> nn.Module | None:
        """The face generator transfers run: None without a face stage or one its held-out check turned off."""
        return self.face_generator if self.face["used"] else None

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def model_keypoints(self, keypoints: np.ndarray) -> np.ndarray:
        """(…, 33, 4) keypoints in target-video pixels -> pixels of the model's frames."""
        return model_keypoints(keypoints, self.stats.frame_size, self.resolution)

    def render_label(self, keypoints: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8 label at the model's resolution from (33, 4) keypoints in target-video
        pixels (e.g. normalize_poses output), drawn exactly as the training labels were."""
        return render_model_label(keypoints, self.stats.frame_size, self.resolution)

    def face_box(self, keypoints: np.ndarray) -> FaceBox | None:
        """The face box (model pixels) the face generator refines, from keypoints in target-video pixels."""
        if self.face_side is None:
            return None
        return face_box(self.model_keypoints(keypoints), self.resolution, side=self.face_side)


def _unwrap(module: nn.Module) -> nn.Module:
    """The plain module under DistributedDataParallel and torch.compile wrappers."""
    module = getattr(module, "module", module)
    return getattr(module, "_orig_mod", module)


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in _unwrap(module).state_dict().items()}


def save_trained_model(folder: str | os.PathLike, config: TrainConfig, stats: PoseStats, generator: nn.Module,
                       face_generator: nn.Module | None, info: dict[str, Any] | None = None) -> Path:
    """Write weights.pt, then model.json (its presence marks a finished model), each atomically.

    `info` may carry steps, metrics, timings and anything else worth showing; it is merged
    into model.json. Other files already in `folder` (samples, loss curves) are listed there.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    generator_config: GeneratorConfig = _unwrap(generator).config
    payload: dict[str, Any] = {
        "format": WEIGHTS_FORMAT,
        "generator": {"config": generator_config.to_dict(), "state": _cpu_state(generator)},
        "face_generator": None,
        "face_side": None,
    }
    if face_generator is not None:
        payload["face_generator"] = {"config": _unwrap(face_generator).config.to_dict(), "state": _cpu_state(face_generator)}
        payload["face_side"] = config.face_side
    with atomic_file(folder / WEIGHTS_FILE) as tmp:
        torch.save(payload, tmp)

    info = dict(info or {})
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.name != MODEL_FILE)
    meta = {
        "name": folder.name,
        "preset": config.preset,
        "resolution": list(config.output_size),
        "face_side": payload["face_side"],
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "steps": info.pop("steps", None),
        "metrics": info.pop("metrics", {}),
        "edn_version": edn_version(),
        "files": files + [MODEL_FILE],
        "config": config.to_dict(),
        "stats": stats.to_dict(),
        **info,
    }
    with atomic_file(folder / MODEL_FILE) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=False))
    return folder


def _load_network(kind: str, network: nn.Module, entry: Any, weights_file: Path) -> None:
    if not isinstance(entry, dict) or "state" not in entry or "config" not in entry:
        raise EdnError(BAD_MODEL, f"{weights_file} has no {kind} weights; train the model again.")
    try:
        load_network_state(network, entry["state"], entry["config"])
    except ValueError as error:
        raise EdnError(BAD_MODEL, f"{weights_file} does not fit the model described by its {MODEL_FILE}: {kind}: {error}. "
                                  "The files were mixed up or written by another edn version; train the model again.") from error


def load_trained_model(name_or_folder: str | os.PathLike, device: str | torch.device = "cpu") -> TrainedModel:
    """Load a trained target by registry name or folder. Raises EdnError MODEL_NOT_FOUND, or
    BAD_MODEL (unreadable files, weights from a config other than model.json's, naming the
    differing fields)."""
    folder = registry.find_model(data_dir(), name_or_folder)
    meta = registry.read_model_info(folder)
    try:
        config = TrainConfig.from_dict(meta["config"])
        stats = PoseStats.from_dict(meta["stats"])
    except (TypeError, ValueError, EdnError) as error:
        raise EdnError(BAD_MODEL, f"{folder / MODEL_FILE} describes a model this edn version cannot build ({error}); "
                                  "train it again.") from error
    weights_file = folder / WEIGHTS_FILE
    try:
        payload = torch.load(weights_file, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise EdnError(BAD_MODEL, f"{weights_file} is missing; the model folder is incomplete. Train the model again.") from None
    except Exception as error:  # torch raises many types for damaged files
        raise EdnError(BAD_MODEL, f"{weights_file} cannot be read ({error}); train the model again.") from error
    if not isinstance(payload, dict) or payload.get("format") != WEIGHTS_FORMAT:
        raise EdnError(BAD_MODEL, f"{weights_file} is not an edn weights file of format {WEIGHTS_FORMAT}; train the model again.")

    generator = define_generator(config.generator)
    _load_network("generator", generator, payload.get("generator"), weights_file)
    face_generator = None
    side = payload.get("face_side")
    if payload.get("face_generator") is not None:
        face_generator = define_face_generator(config.face_generator)
        _load_network("face generator", face_generator, payload["face_generator"], weights_file)
        face_generator = face_generator.to(device).eval()
    return TrainedModel(
        name=str(meta.get("name", folder.name)), folder=folder, config=config, stats=stats,
        generator=generator.to(device).eval(), face_generator=face_generator,
        face_side=int(side) if side is not None else None, resolution=config.output_size, info=meta,
        mode=PERSON if meta.get("mode") == PERSON else FULL_FRAME,
    )
