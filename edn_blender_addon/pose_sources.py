"""Which poses a strip sends to Transfer Motion and Preview Poses: a Scene strip's rig, a movie strip's
edited pose track, or (the default) none, and the server detects them in the strip's media. Poses
made here travel as an edn pose file, the server's media kind `poses` (uploaded to a remote server)."""
from __future__ import annotations

import dataclasses
import os

import bpy

from . import jobstate, rig_source, strips
from .packing import UploadSource
from .pose_file import POSES_MEDIA_KIND, load_poses, save_poses
from .pose_track import edited_poses

TRACK_KEY = "edn_pose_track"  # on a movie strip: the name of its pose track (a Movie Clip)
BASE_KEY = "edn_pose_base"  # on that clip: the pose file the track was made from
EDITED_POSES_FILE = "edited_poses.npz"
MOTION_TYPES = ("MOVIE", "IMAGE", "SCENE")


@dataclasses.dataclass(frozen=True)
class PosedSource:
    """A strip's poses written to `source.path`, covering the frames it shows."""

    source: strips.StripMedia
    presmoothed: bool = False  # a pose track was smoothed when imported: smoothing again would blur the edits

    def media(self) -> dict:
        return {"kind": POSES_MEDIA_KIND, **jobstate.media_ref(self.source.path, jobstate.MediaRange(0, self.source.shown.count, 0), None)}

    def upload(self) -> UploadSource:
        return UploadSource(movie=self.source.path)


def motion_poll_reason(strip) -> str | None:
    """Why a strip cannot be the source of a transfer or preview (poll: no file access, no sampling)."""
    if strip is not None and strip.type not in MOTION_TYPES:
        return f"The active strip '{strip.name}' is a {strip.type.lower()} strip; make a movie, image or scene strip active"
    if rig_source.is_scene_strip(strip):
        return rig_source.scene_strip_problem(strip)
    return strips.unsupported_reason(strip)


def pose_track(strip):
    """The strip's pose track clip name, if it was given one (it may since have been deleted)."""
    name = strip.get(TRACK_KEY) if strip is not None and strip.type == "MOVIE" else None
    return str(name) if name else None


def describe(strip) -> str:
    """One line for the sidebar: which poses the strip will use."""
    if rig_source.is_scene_strip(strip):  # the poll has made sure the strip shows a scene
        armature = strip.scene.edn_rig.armature
        rig = f"armature '{armature.name}'" if armature is not None else "found"
        return f"Poses: the rig {rig} in scene '{strip.scene.name}'"
    name = pose_track(strip)
    if name and bpy.data.movieclips.get(name) is not None:
        return f"Poses: edited pose track '{name}'"
    if name:
        return f"Poses: detected (pose track '{name}' was deleted)"
    return "Poses: detected in the movie"


def _track_base(clip):
    """The poses a track was made from (its markers hold only their x, y), or None when unreadable."""
    path = clip.get(BASE_KEY)
    try:
        return load_poses(bpy.path.abspath(path)) if path else None
    except (OSError, ValueError, KeyError):
        return None


def prepare(scene, strip, output_dir: str) -> tuple[PosedSource | None, str | None]:
    """(the strip's poses written into `output_dir`, a warning): (None, None) when the server is to
    detect them, (None, warning) when a pose track had to be ignored. StripProblem when unusable."""
    if rig_source.is_scene_strip(strip):
        path = rig_source.poses_path(output_dir)
        try:
            shown = rig_source.write_strip_poses(strip, path)
        except (rig_source.RigSourceProblem, OSError) as exc:
            raise strips.StripProblem(str(exc)) from None
        return PosedSource(strips.StripMedia(strip.name, "poses", path, shown, strip.channel, None)), None
    name = pose_track(strip)
    if name is None:
        return None, None
    media = strips.strip_media(scene, strip)
    clip = bpy.data.movieclips.get(name)
    if clip is None:
        return None, f"The pose track '{name}' was deleted; the poses are detected again."
    base = _track_base(clip)
    if base is None:
        return None, f"The pose file behind pose track '{name}' is gone or unreadable; its edits are ignored. Import it again."
    if (base.frame_start, len(base)) != (media.shown.first, media.shown.count):
        return None, (f"The pose track '{name}' covers {len(base)} frames from frame {base.frame_start}, but the strip now "
                      f"shows {media.shown.count} from frame {media.shown.first}; its edits are ignored. Import it again.")
    poses, warning = edited_poses(name, base)
    if poses is None:
        return None, warning
    path = os.path.join(output_dir, EDITED_POSES_FILE)
    try:
        save_poses(poses, path)
    except OSError as exc:
        raise strips.StripProblem(f"Could not write the edited poses to {path} ({exc.strerror or exc}); choose another "
                                  "output folder.") from None
    return PosedSource(dataclasses.replace(media, kind="poses", path=path, fps=None, visible_files=()), presmoothed=True), None
