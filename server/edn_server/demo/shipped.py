"""What `make demo` ships, so a fresh clone neither renders nor trains: the sample clips (our own
Blender renders, re-encoded to H.264) and a demo model of the sample target trained by `edn train`
(shipped/COMMAND.md records how; MANIFEST.json their sha256 sums and the edn commit). Package data:
an installed edn has them too.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from ..atomic import atomic_dir
from ..media import content_hash

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
MANIFEST = "MANIFEST.json"
MODEL_DIR = "model"
CLIP_FILES = {"target": "target.mp4", "source": "source.mp4"}
MODEL_FILES = ("weights.pt", "model.json", "plate.png")  # what loading a person-mode model needs


def file_sha256(path: Path) -> str:
    return content_hash(path)  # a movie file's content hash is the sha256 of its bytes


@dataclasses.dataclass(frozen=True)
class ShippedDemo:
    folder: Path
    manifest: dict

    @property
    def target(self) -> Path:
        return self.folder / CLIP_FILES["target"]

    @property
    def source(self) -> Path:
        return self.folder / CLIP_FILES["source"]

    @property
    def model_name(self) -> str:
        return str(self.manifest["model"]["name"])

    @property
    def model_preset(self) -> str:
        return str(self.manifest["model"]["preset"])


def shipped_demo(folder: Path = SHIPPED_DIR) -> ShippedDemo | None:
    """The shipped clips and model, or None when this copy of edn has none (the demo then renders the
    samples and trains, as with --retrain)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        manifest["model"]["name"], manifest["model"]["preset"]  # noqa: B018 - both sections must be there
    except (OSError, ValueError, KeyError, TypeError):
        return None
    demo = ShippedDemo(folder, manifest)
    return demo if demo.target.is_file() and demo.source.is_file() else None


def model_problem(demo: ShippedDemo) -> str | None:
    """Why the shipped model cannot be used as is (a file missing, or not the bytes MANIFEST.json
    recorded), or None."""
    files = demo.manifest["model"].get("files") or {}
    for name in MODEL_FILES:
        path = demo.folder / MODEL_DIR / name
        expected = (files.get(name) or {}).get("sha256")
        if not path.is_file():
            return f"{path} is missing"
        if not expected or file_sha256(path) != expected:
            return f"{path} does not match the sha256 recorded in {demo.folder / MANIFEST}"
    return None


def install_model(demo: ShippedDemo, models_dir: Path) -> Path | None:
    """Copy the shipped model into models_dir under its demo name, after checking its files' sha256
    sums; None (and nothing written) when a check fails: it prints why, and the caller trains."""
    problem = model_problem(demo)
    if problem:
        print(f"The shipped demo model cannot be used: {problem} (a damaged or edited copy of edn). "
              "Training the demo model here instead.", flush=True)
        return None
    final = models_dir / demo.model_name
    with atomic_dir(final) as tmp:
        for name in MODEL_FILES:
            shutil.copyfile(demo.folder / MODEL_DIR / name, tmp / name)
    return final
