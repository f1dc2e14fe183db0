"""Trained targets: one folder per model under <data dir>/models/<name>/, described by its model.json."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from .errors import BAD_MODEL, BAD_PARAMS, MODEL_NOT_FOUND, UNDER_TRAINED, EdnError
from .names import FULL_FRAME

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
            entry["info"] = read_model_info(folder, complete=False)
            entry.update(model_mode(entry["info"]))
        except EdnError as exc:
            entry["error"] = exc.message
        else:
            entry["warning"] = training_warning(entry["info"])
        found.append(entry)
    return sorted(found, key=lambda m: m["modified"], reverse=True)


def model_mode(meta: dict) -> dict:
    """{"mode", "mode_reason"} of a model.json: "person" (generates the person with alpha over its
    background plate) or "full-frame"; models trained before the person layer are full-frame."""
    if "mode" not in meta:
        return {"mode": FULL_FRAME, "mode_reason": "trained before the person layer: transfers full-frame, as it always did"}
    return {"mode": str(meta["mode"]), "mode_reason": str((meta.get("layer") or {}).get("reason", ""))}


def read_model_info(folder: Path, complete: bool = True) -> dict:
    """The parsed model.json of a model folder: the one place that reads it. BAD_MODEL when it cannot be
    read, is not an object or (`complete`) lacks the config or the target statistics."""
    meta_file = Path(folder) / MODEL_FILE
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError) as exc:
        raise EdnError(BAD_MODEL, f"{meta_file} could not be read ({exc}); train the model again or delete it.") from exc
    if not isinstance(meta, dict):
        raise EdnError(BAD_MODEL, f"{meta_file} does not describe a model; train the model again or delete it.")
    if complete and not (isinstance(meta.get("config"), dict) and isinstance(meta.get("stats"), dict)):
        raise EdnError(BAD_MODEL, f"{meta_file} lacks the config or the target statistics; train the model again.")
    return meta


def training_warning(info: dict) -> dict | None:
    """{code, message} when a model trained fewer steps than its preset's useful floor (the config's
    useful_steps, saved in model.json), else None. A warning only: such a model still transfers."""
    floor = (info.get("config") or {}).get("useful_steps") or 0
    steps = info.get("steps")
    if not isinstance(steps, int) or not isinstance(floor, int) or steps >= floor:
        return None
    preset = info.get("preset") or "this"
    return {"code": UNDER_TRAINED,
            "message": f"Model {info.get('name', '?')!r} trained only {steps} steps; a {preset} model needs about {floor} "
                       "before its frames look like the person (until then they look like coloured noise). Continue its "
                       "training for more minutes."}


def model_stats(data_dir: Path, name: str) -> dict:
    """The target statistics saved with a registered model (MODEL_NOT_FOUND, BAD_MODEL). Only they are
    needed (Preview Poses), so a model whose weights or config are unusable still previews."""
    folder = model_path(data_dir, name)
    stats = read_model_info(folder, complete=False).get("stats")
    if not isinstance(stats, dict):
        raise EdnError(BAD_MODEL, f"{folder / MODEL_FILE} lacks the target statistics; train the model again.")
    return stats


def model_path(data_dir: Path, name: str) -> Path:
    folder = models_dir(data_dir) / check_name(name)
    if not (folder / MODEL_FILE).is_file():
        raise EdnError(MODEL_NOT_FOUND, f"No trained model named {name!r} on this server. List them with GET /v1/models, "
                                        "or train one first.")
    return folder


def find_model(data_dir: Path, name_or_folder: str | os.PathLike) -> Path:
    """A model's folder from its registry name, or from a folder path (anything with a path separator,
    or a plain name that is not registered but is a model folder here)."""
    text = os.fspath(name_or_folder)
    candidate = Path(text).expanduser()
    is_path = os.sep in text or bool(os.altsep and os.altsep in text)
    if not is_path:
        try:
            return model_path(data_dir, text)
        except EdnError as error:
            if error.code not in (MODEL_NOT_FOUND, BAD_PARAMS):
                raise
    if (candidate / MODEL_FILE).is_file():
        return candidate
    if is_path:
        raise EdnError(MODEL_NOT_FOUND, f"{candidate} holds no trained model ({MODEL_FILE} is missing); "
                                        "pass a model's folder or its name, or train one with `edn train`.")
    raise EdnError(MODEL_NOT_FOUND, f"No trained model named {text!r} in {models_dir(data_dir)}. "
                                    "Train one with `edn train VIDEO --name NAME`, or check the name "
                                    "(GET /v1/models lists them; EDN_HOME picks the data folder).")


def delete_model(data_dir: Path, name: str) -> None:
    """Rename first, so the model disappears at once even if removing its files takes a while."""
    folder = model_path(data_dir, name)
    doomed = folder.with_name(f".{folder.name}.deleting")
    shutil.rmtree(doomed, ignore_errors=True)
    os.replace(folder, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
