"""Trained targets: one folder per model under <data dir>/models/<name>/, described by its model.json."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from .errors import BAD_PARAMS, MODEL_NOT_FOUND, EdnError

MODEL_FILE = "model.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$")


def models_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "models"


def check_name(name: str) -> str:
    if not _NAME.match(name) or name.strip() != name or ".." in name:
        raise EdnError(BAD_PARAMS, f"Model name {name!r} is not valid: use letters, digits, spaces, '.', '_' or '-' "
                                   "(up to 100 characters, no path separators).")
    return name


def list_models(data_dir: Path) -> list[dict]:
    """Every folder with a model.json, newest first; a model.json that does not parse is listed with its error."""
    root = models_dir(data_dir)
    found = []
    for folder in root.iterdir() if root.is_dir() else ():
        meta_file = folder / MODEL_FILE
        if folder.name.startswith(".") or not meta_file.is_file():
            continue  # half-written (atomic_dir temp) or not a model
        entry: dict = {"name": folder.name, "path": str(folder), "modified": meta_file.stat().st_mtime}
        try:
            meta = json.loads(meta_file.read_text())
            entry["info"] = meta if isinstance(meta, dict) else {"value": meta}
        except (OSError, ValueError) as exc:
            entry["error"] = f"{meta_file} could not be read ({exc}); train the model again or delete it."
        found.append(entry)
    return sorted(found, key=lambda m: m["modified"], reverse=True)


def model_path(data_dir: Path, name: str) -> Path:
    folder = models_dir(data_dir) / check_name(name)
    if not (folder / MODEL_FILE).is_file():
        raise EdnError(MODEL_NOT_FOUND, f"No trained model named {name!r} on this server. List them with GET /v1/models, "
                                        "or train one first.")
    return folder


def delete_model(data_dir: Path, name: str) -> None:
    """Rename first, so the model disappears at once even if removing its files takes a while."""
    folder = model_path(data_dir, name)
    doomed = folder.with_name(f".{folder.name}.deleting")
    shutil.rmtree(doomed, ignore_errors=True)
    os.replace(folder, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
