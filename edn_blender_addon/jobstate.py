"""Pure job logic, free of bpy: job states and their display text, ETA formatting, the media range a
strip shows, where a result strip goes, and the request bodies for each job kind."""
from __future__ import annotations

import dataclasses
import os
import re
import time

# The server's states (copies of edn_server.service.job_table's, pinned by tests/addon/test_server_facts.py),
# plus two of the add-on's own: before a job has a server id, and after it could not get one.
QUEUED, RUNNING, DONE = "queued", "running", "done"
FAILED, CANCELLED, INTERRUPTED = "failed", "cancelled", "interrupted"
SERVER_STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED)
SUBMITTING, NOT_SENT = "submitting", "not_sent"
FINAL = (DONE, FAILED, CANCELLED, INTERRUPTED, NOT_SENT)
ACTIVE = (SUBMITTING, QUEUED, RUNNING)

KIND_LABELS = {"transfer": "Transfer", "train": "Train", "preview_poses": "Preview", "extract_poses": "Poses", "eval": "Eval"}
_STATE_LABELS = {SUBMITTING: "Submitting", QUEUED: "Queued", RUNNING: "Running", DONE: "Done", FAILED: "Failed",
                 CANCELLED: "Cancelled", INTERRUPTED: "Interrupted (server stopped)", NOT_SENT: "Not sent"}
MAX_CHANNEL = 128
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".exr", ".webp")  # edn_server.media's


def is_final(state: str) -> bool:
    return state in FINAL


def format_eta(seconds: float | None) -> str:
    """'8 s', '2 min 05 s', '1 h 04 min'; '' when unknown."""
    if seconds is None or seconds < 0 or seconds != seconds:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def state_label(state: str) -> str:
    return _STATE_LABELS.get(state, state.capitalize() or "Unknown")


def transfer_text(verb: str, done: int, total: int) -> str:
    """'uploading 12.0 of 80.0 MB': a file on its way to or from a remote server."""
    if total <= 0:
        return f"{verb} {done / 1e6:.1f} MB"
    return f"{verb} {done / 1e6:.1f} of {total / 1e6:.1f} MB"


def status_text(kind: str, state: str, progress: float, stage: str, eta_s: float | None) -> str:
    """One line for the panel, e.g. 'Transfer: Running, detect poses, 42%, 1 min 10 s left'."""
    parts = [state_label(state)]
    if state == RUNNING:
        if stage:
            parts.append(stage)
        parts.append(f"{progress:.0%}")
        eta = format_eta(eta_s)
        if eta:
            parts.append(f"{eta} left")
    elif state in (DONE, SUBMITTING) and stage:
        parts.append(stage)  # e.g. "uploading 12.0 of 80.0 MB", "downloading frames" or the strip placed
    return f"{KIND_LABELS.get(kind, kind)}: " + ", ".join(parts)


# -- which frames of the media a strip shows --------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class MediaRange:
    """Frames [first, end) of the media (0-based, end exclusive) shown from timeline frame `timeline_start`."""

    first: int
    end: int
    timeline_start: int

    @property
    def count(self) -> int:
        return self.end - self.first


def visible_media_range(frame_start: float, frame_final_start: int, frame_final_end: int, media_frames: int,
                        animation_offset_start: int = 0) -> MediaRange:
    """The media frames a strip shows. `frame_start` is where the media's frame 0 would sit on the
    timeline (before the strip's own offsets); the visible part starts at frame_final_start. Frames
    held past either end of the media (negative offsets) are not media, so they are cut off."""
    origin = int(round(frame_start)) - int(animation_offset_start)
    first = max(0, frame_final_start - origin)
    end = min(media_frames, frame_final_end - origin)
    if end <= first:
        raise ValueError("the strip shows none of its media's frames (only held frames past its ends)")
    return MediaRange(first=first, end=end, timeline_start=origin + first)


def natural_key(name: str) -> list:
    """The server's order for image files (edn_server.media): numbers compared as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def server_image_order(names: list[str]) -> list[str]:
    """The images of a folder as the server reads them (edn_server.media.list_images): by suffix, in natural order."""
    return sorted((n for n in names if os.path.splitext(n)[1].lower() in IMAGE_SUFFIXES), key=natural_key)


def image_folder_range(folder_files: list[str], strip_files: list[str], shown: MediaRange) -> MediaRange:
    """Translate an image strip's visible range (indices into its own element list) into indices of
    the folder's images as the server orders them. The strip's visible images must be a contiguous
    run of the folder, else ValueError naming the problem."""
    ordered = server_image_order(folder_files)
    visible = strip_files[shown.first:shown.end]
    if not visible:
        raise ValueError("the strip shows no images")
    try:
        first = ordered.index(visible[0])
    except ValueError:
        raise ValueError(f"image {visible[0]} is not in the strip's folder any more") from None
    if ordered[first:first + len(visible)] != visible:
        raise ValueError("the strip's images are not consecutive files of its folder (the server reads the "
                         "folder in name order); put the frames in a folder of their own")
    return MediaRange(first=first, end=first + len(visible), timeline_start=shown.timeline_start)


# -- where results go -----------------------------------------------------------------------------------

def overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    return a_start < b_end and b_start < a_end


def first_free_channel(occupied: list[tuple[int, int, int]], above: int, start: int, end: int,
                       max_channel: int = MAX_CHANNEL) -> int:
    """The lowest channel above `above` with nothing in [start, end); `occupied` holds (channel, start, end)."""
    for channel in range(above + 1, max_channel + 1):
        if not any(c == channel and overlaps(s, e, start, end) for c, s, e in occupied):
            return channel
    raise ValueError(f"every channel above {above} is taken between frames {start} and {end}")


def output_folder_name(source: str, kind: str, when: float | None = None) -> str:
    """A fresh folder per job, readable in a file browser: '<source>-<kind>-<YYYYmmdd-HHMMSS>'."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", source).strip("._") or "strip"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if when is None else when))
    return f"{safe[:40]}-{kind}-{stamp}"


def frame_files(names: list[str]) -> list[str]:
    return sorted((n for n in names if n.lower().endswith(IMAGE_SUFFIXES) and not n.startswith(".")), key=natural_key)


# -- request bodies ----------------------------------------------------------------------------------------

COMPOSITE, PERSON_ALPHA = "composite", "person-alpha"  # the server's transfer outputs (params.output)

@dataclasses.dataclass(frozen=True)
class MotionSettings:
    """The sidebar's settings, as the server's params want them."""

    auto_normalize: bool = True
    scale: float = 1.0
    offset_x: float = 0.0
    offset_y: float = 0.0
    mirror: bool = False
    smoothing: float = 1.0
    face_refinement: bool = True
    pose_model: str = "full"  # the PoseLandmarker variant: lite, full or heavy
    output: str = COMPOSITE  # a transfer's frames: COMPOSITE or PERSON_ALPHA
    output_height: str = "target"  # "target" (the target video's own) or a height in pixels: "1080", "720", "512"

    def normalization(self) -> dict:
        return {"auto": self.auto_normalize, "scale": self.scale, "offset_x": self.offset_x,
                "offset_y": self.offset_y, "mirror": self.mirror}


def media_ref(path: str | None, shown: MediaRange, fps: float | None, upload_id: str | None = None) -> dict:
    ref: dict = {"upload_id": upload_id} if upload_id else {"path": path}
    ref.update(frame_start=shown.first, frame_end=shown.end)
    if fps:
        ref["fps"] = float(fps)
    return ref


def _with_output(params: dict, output_dir: str | None) -> dict:
    if output_dir:
        params["output_dir"] = output_dir
    return params


def preview_params(settings: MotionSettings, model: str, output_dir: str | None) -> dict:
    """The server reads the target's statistics from the named model, as a transfer does."""
    return _with_output({"target_model": model, "normalization": settings.normalization(),
                         "smooth": settings.smoothing, "model": settings.pose_model}, output_dir)


def transfer_params(settings: MotionSettings, model: str, output_dir: str | None) -> dict:
    height = settings.output_height
    return _with_output({"model": model, "normalization": settings.normalization(), "smooth": settings.smoothing,
                         "face": settings.face_refinement, "pose_model": settings.pose_model, "output": settings.output,
                         "output_height": int(height) if height.isdigit() else height}, output_dir)


def train_params(name: str, preset: str, minutes: float, pose_model: str = "full", resume: bool = False) -> dict:
    """`resume` continues the model of that name (the server keeps its own preset and settings)."""
    params = {"name": name, "preset": preset, "minutes": float(minutes), "pose_model": pose_model}
    return {**params, "resume": True} if resume else params
