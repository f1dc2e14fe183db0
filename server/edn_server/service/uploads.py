"""Media sent over HTTP by a client on another machine, streamed to disk under the data dir."""
from __future__ import annotations

import asyncio
import logging
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from ..atomic import atomic_dir, remove_partials
from ..errors import BAD_PARAMS, MEDIA_NOT_FOUND, TOO_LARGE, EdnError
from .frame_archive import FRAMES_FOLDER, is_frame_archive, unpack_frames
from .job_contract import FieldError

log = logging.getLogger("edn.uploads")
_ID = re.compile(r"^[0-9a-f]{32}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME_CHARS = 120


def safe_filename(name: str | None) -> str:
    """Keep the client's base name but nothing that could escape the folder; its extension always
    survives (decoders look at it, and `.zip` means an image sequence), however odd or long the rest."""
    base = Path((name or "").replace("\\", "/")).name
    stem, dot, extension = base.rpartition(".")
    if not dot:
        stem, extension = base, ""
    extension = re.sub(r"[^A-Za-z0-9]", "", extension)[:16]
    stem = _UNSAFE.sub("_", stem).strip("._")[:MAX_NAME_CHARS - len(extension) - 1] or "upload"
    return f"{stem}.{extension}" if extension else stem


class Uploads:
    def __init__(self, root: Path, max_bytes: int):
        self.root = Path(root)
        self.max_bytes = max_bytes

    def remove_partials(self) -> list[Path]:
        """Uploads a killed server was still receiving (never usable: they never got their final name)."""
        removed = remove_partials(self.root)
        for path in removed:
            log.warning("removed %s, an upload the server was receiving when it stopped", path)
        return removed

    async def receive(self, upload_id: str, filename: str | None, chunks: AsyncIterator[bytes]) -> dict:
        """Stream a request body into uploads/<id>/<name>; the folder appears only once complete.
        A .zip is an image sequence: it is unpacked into uploads/<id>/frames (see frame_archive)."""
        name = safe_filename(filename)
        size = 0
        frames = None
        with atomic_dir(self.root / upload_id) as tmp:
            with open(tmp / name, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise EdnError(TOO_LARGE, f"The upload is larger than this server's limit of {self.max_bytes} bytes. "
                                                  "Send a shorter clip, or start the server with a larger --max-upload.")
                    out.write(chunk)  # page-cache writes: cheap enough for the event loop
            if size == 0:
                raise EdnError(BAD_PARAMS, "The upload is empty. Send the movie file's bytes as the request body.")
            if is_frame_archive(name):
                _, frames = await asyncio.to_thread(unpack_frames, tmp / name, self.max_bytes)
        reply = {"upload_id": upload_id, "filename": name, "size": size}
        return reply if frames is None else {**reply, "frames": frames}

    def path(self, upload_id: str) -> Path:
        folder = self.root / upload_id if _ID.match(upload_id or "") else None
        files = [p for p in folder.iterdir() if p.is_file() or p.name == FRAMES_FOLDER] \
            if folder is not None and folder.is_dir() else []
        if not files:
            raise FieldError(MEDIA_NOT_FOUND, f"Upload {upload_id!r} does not exist on this server (it was deleted, or never "
                                              "finished). Upload the media again with POST /v1/uploads.", "input.media.upload_id")
        return files[0]

    def delete(self, upload_id: str) -> None:
        self.path(upload_id)
        shutil.rmtree(self.root / upload_id)
