"""Where edn keeps its files. Every location can be overridden by an environment variable."""
from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """Jobs, trained models and caches of derived data (`EDN_HOME`, default the XDG data dir)."""
    if os.environ.get("EDN_HOME"):
        return Path(os.environ["EDN_HOME"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base).expanduser() / "edn"


def user_cache_dir() -> Path:
    """Downloaded weights and rendered samples, shared by every data dir and server on this machine."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "edn"


def pose_cache_dir() -> Path:
    """Extracted keypoints, keyed by media content hash + frame range + detector model."""
    return data_dir() / "cache" / "poses"


SERVER_PYTHON_FILE = "server_python"  # in the data dir: the add-on's default Python for starting `edn serve`


def record_python(folder: Path | None = None) -> Path:
    """Write this interpreter's path into <data dir>/server_python, so a Blender extension installed
    from a zip (which finds no project .venv above itself) can start the server with it later."""
    import sys

    from .atomic import atomic_file

    folder = Path(folder or data_dir()).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_file(folder / SERVER_PYTHON_FILE) as tmp:
        tmp.write_text(sys.executable + "\n")
    return folder / SERVER_PYTHON_FILE
