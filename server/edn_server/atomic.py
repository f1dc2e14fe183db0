"""Write files and folders so that a reader never sees a half-written result."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

# The temporary names below: "." + final name + "." + mkstemp's 8 random characters + ".part" [+ suffix].
_PARTIAL = re.compile(r"^\..+\.[a-z0-9_]{8}\.part(\.[A-Za-z0-9]{1,8})?$")


def remove_partials(folder: str | os.PathLike) -> list[Path]:
    """Delete what atomic_file/atomic_dir left in `folder` when a process was killed mid-write (they
    are never results: those only appear under their final names). Returns what was removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:  # gone, or unreadable: nothing of ours to clean
        return removed
    for entry in entries:
        if not _PARTIAL.match(entry.name):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_file(final: str | os.PathLike, suffix: str | None = None, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside `final`; on success it is renamed onto `final`, on error removed.

    `suffix` keeps the extension writers look at (numpy appends .npz, OpenCV picks codecs by it).
    `mode` is applied before the rename: mkstemp creates files readable by their owner only, which
    would leave results unreadable to other tools (Blender run as another user, a web server).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    suffix = final.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".part{suffix}", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `final`; on success it replaces `final`, on error it is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
