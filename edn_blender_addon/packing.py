"""What a remote server is sent for a strip: its movie file, or its image sequence as one zip. No bpy.

A server on another machine cannot read this machine's folders, so the frames an image strip shows
are packed flat, in timeline order, into a zip the server unpacks into a folder of its own. The
zip is written next to where the results will land (a folder the user chose, so it is writable),
streamed up, and removed whatever happens.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

from .client import CANCELLED, EdnClient, ServerError


@dataclasses.dataclass(frozen=True)
class UploadSource:
    """A movie file, or the named images of a folder, to send to a remote server."""

    movie: str | None = None
    folder: str | None = None
    images: tuple[str, ...] = ()
    scratch_dir: str | None = None  # where the zip of an image sequence is written

    def send(self, client: EdnClient, name: str, cancelled: Callable[[], bool] | None = None,
             progress: Callable[[int, int], None] | None = None) -> str:
        """Upload and return the server's upload_id; progress(bytes sent, bytes in all)."""
        if self.movie:
            return client.upload(self.movie, progress=progress, cancelled=cancelled)
        archive = pack_frames(self.folder, self.images, Path(self.scratch_dir) / f".{name}.upload.zip", cancelled)
        try:
            return client.upload(archive, progress=progress, cancelled=cancelled)
        finally:
            archive.unlink(missing_ok=True)

    def submit_job(self, client: EdnClient, kind: str, params: dict, media: dict, name: str,
                   cancelled: Callable[[], bool] | None = None, progress: Callable[[int, int], None] | None = None) -> dict:
        """Upload, then submit the job on the upload (media's path dropped); a refused job's upload is deleted."""
        client.health()  # a wrong token or URL shows here, not as a broken pipe halfway through the upload
        upload_id = self.send(client, name, cancelled=cancelled, progress=progress)
        try:
            return client.submit(kind, params, {**{k: v for k, v in media.items() if k != "path"}, "upload_id": upload_id})
        except ServerError:
            with contextlib.suppress(ServerError):  # no job will ever read it
                client.request_json("DELETE", f"/v1/uploads/{upload_id}")
            raise


def pack_frames(folder: str | os.PathLike, names: tuple[str, ...] | list[str], archive: Path,
                cancelled: Callable[[], bool] | None = None) -> Path:
    """Store (not compress: the images already are) `names` from `folder` at the top of `archive`."""
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED, allowZip64=True) as packed:
            for name in names:
                if cancelled is not None and cancelled():
                    raise ServerError(CANCELLED, "The upload was cancelled.")
                packed.write(os.path.join(folder, name), arcname=name)
    except OSError as exc:
        if archive.is_file():
            archive.unlink()
        raise ServerError("UPLOAD_FAILED", f"Could not pack the image sequence for the remote server in {archive.parent} "
                                           f"({exc.strerror or exc}). Free some disk space or choose another output "
                                           "folder, then try again.") from None
    except BaseException:
        archive.unlink(missing_ok=True)
        raise
    return archive
