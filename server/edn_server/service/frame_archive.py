"""An image sequence sent from another machine as one zip archive: checked, then unpacked flat.

A client (the Blender add-on in Remote mode) packs the frames of an image strip, in timeline order,
as the top-level members of a zip. Only image files at the top level are accepted, so nothing in
an archive can name a path outside its folder, and the unpacked size is bounded before any byte
is written (a small archive cannot expand into a full disk).
"""
from __future__ import annotations

import os
import shutil
import zipfile
import zlib
from pathlib import Path

from ..errors import BAD_PARAMS, MEDIA_UNREADABLE, NO_FRAMES, TOO_LARGE, EdnError
from ..media import DISK_ERRNOS, IMAGE_SUFFIXES, disk_error

FRAMES_FOLDER = "frames"
NAME_MAX_BYTES = 255  # the longest file name common file systems store
_ENCRYPTED = 0x1  # zip general-purpose flag bit


def is_frame_archive(filename: str) -> bool:
    return filename.lower().endswith(".zip")


def _checked_members(archive: zipfile.ZipFile, label: str, max_bytes: int) -> list[zipfile.ZipInfo]:
    """The archive's files, or EdnError when one is not a top-level image or they unpack too large."""
    members = [m for m in archive.infolist() if not m.is_dir()]
    problems = [m.filename for m in members
                if "/" in m.filename or "\\" in m.filename or m.filename.startswith(".")
                or not m.filename.lower().endswith(IMAGE_SUFFIXES) or len(os.fsencode(m.filename)) > NAME_MAX_BYTES]
    if problems:
        raise EdnError(BAD_PARAMS, f"The archive {label} may hold only image files ({', '.join(IMAGE_SUFFIXES)}) at its top "
                                   f"level, named in at most {NAME_MAX_BYTES} bytes; it has {problems[0][:80]!r}"
                                   f"{' and others' if len(problems) > 1 else ''}. Zip the frames themselves, without folders.")
    if any(m.flag_bits & _ENCRYPTED for m in members):
        raise EdnError(BAD_PARAMS, f"The archive {label} is encrypted; the server cannot open it. Zip the frames without a password.")
    if not members:
        raise EdnError(NO_FRAMES, f"The archive {label} holds no images. Zip the frames of the image sequence.")
    names = [m.filename for m in members]
    if len(set(names)) != len(names):
        raise EdnError(BAD_PARAMS, f"The archive {label} names a file twice; zip each frame once.")
    unpacked = sum(m.file_size for m in members)
    if unpacked > max_bytes:
        raise EdnError(TOO_LARGE, f"The archive {label} unpacks to {unpacked} bytes, over this server's limit of "
                                  f"{max_bytes} bytes. Send fewer frames, or start the server with a larger --max-upload.")
    return members


def unpack_frames(archive_path: Path, max_bytes: int) -> tuple[Path, int]:
    """Unpack archive_path's images into a `frames` folder beside it and delete the archive.
    Returns (folder, image count); EdnError with a code when the archive is unusable."""
    label = archive_path.name
    folder = archive_path.parent / FRAMES_FOLDER
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = _checked_members(archive, label, max_bytes)
            folder.mkdir()
            for member in members:
                with archive.open(member) as source, open(folder / member.filename, "wb") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
    except OSError as exc:
        if exc.errno in DISK_ERRNOS:
            raise disk_error(exc) from None
        raise _unreadable(label, exc) from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, RuntimeError, ValueError, zlib.error) as exc:
        raise _unreadable(label, exc) from None
    archive_path.unlink()
    return folder, len(members)


def _unreadable(label: str, exc: Exception) -> EdnError:
    return EdnError(MEDIA_UNREADABLE, f"The upload {label} is not a readable zip archive ({exc}). Send the image "
                                      "sequence as a plain zip of its frames, or send a movie file.")
