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
