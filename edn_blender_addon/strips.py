"""Everything that differs between Blender 4.2's and 5.x's API, in one place: `strips` vs
`sequences`, the workspace's `sequencer_scene`, the strip constructors' keywords, FFMPEG's
`media_type` and path properties' '//' option; plus reading a strip's media and adding the result strip."""
from __future__ import annotations

import dataclasses
import os

import bpy

from . import jobstate

SUPPORTED_TYPES = ("MOVIE", "IMAGE")
MADE_BY_EDN = "edn_kind"  # custom property on the strips edn adds: the job kind that made it
_MADE_BY = {"preview_poses": "a stick-figure preview made by Preview Poses",
            "transfer": "a result made by Transfer Motion"}

# Path properties: 5.x warns about '//' paths unless the property says it takes them; 4.2 lacks the option.
_TAKES_BLEND_RELATIVE = "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties
BLEND_RELATIVE_PATH = {"PATH_SUPPORTS_BLEND_RELATIVE"} if _TAKES_BLEND_RELATIVE else set()


class StripProblem(Exception):
    """The active strip cannot be used; the message says why and what to do."""


def sequencer_scene(context) -> bpy.types.Scene | None:
    """The scene the Sequencer shows: 5.x may show another scene than the window's (workspace setting)."""
    workspace = getattr(context, "workspace", None)
    scene = getattr(workspace, "sequencer_scene", None) if workspace is not None else None
    return scene or getattr(context, "scene", None)


def top_level(editor) -> bpy.types.bpy_prop_collection:
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def all_strips(editor) -> bpy.types.bpy_prop_collection:
    return editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all


def active_strip(scene):
    editor = scene.sequence_editor if scene is not None else None
    return editor.active_strip if editor is not None else None


def unsupported_reason(strip) -> str | None:
    """Why a strip cannot be a motion source (checked in poll: no file access here)."""
    if strip is None:
        return "Select a movie or image strip in the Sequencer (click it to make it the active strip)"
    if strip.type not in SUPPORTED_TYPES:
        return f"The active strip '{strip.name}' is a {strip.type.lower()} strip; make a movie or image strip active"
    made_by = strip.get(MADE_BY_EDN)
    if made_by:
        what = _MADE_BY.get(made_by, "made by edn")
        return f"'{strip.name}' is {what}, not footage: click the source strip (below it) to make it active"
    return None


@dataclasses.dataclass(frozen=True)
class StripMedia:
    """What the server needs to know about a strip's media, and where on the timeline it sits."""

    name: str
    kind: str  # "movie" or "images"
    path: str  # movie file, or folder of images
    shown: jobstate.MediaRange  # media frame indices the server will read
    channel: int
    fps: float | None  # image folders only: the scene's rate
    visible_files: tuple[str, ...] = ()  # image folders only: the images the strip shows, in timeline order
    still_frames: int = 0  # a still image: the timeline frames it is held for (its one pose is held as long)


def _scene_fps(scene) -> float:
    return scene.render.fps / (scene.render.fps_base or 1.0)


def strip_media(scene, strip) -> StripMedia:
    """Read the active strip into a media reference, or StripProblem with a message for the user."""
    reason = unsupported_reason(strip)
    if reason:
        raise StripProblem(reason + ".")
    if strip.type == "MOVIE":
        path = bpy.path.abspath(strip.filepath, library=strip.id_data.library)
        if not os.path.isfile(path):
            raise StripProblem(f"The movie file of strip '{strip.name}' is missing: {path}. Relink it "
                               "(Strip > Movie Strip > Change Path) and try again.")
        total = strip.frame_duration
        kind, fps, files = "movie", None, None
    else:
        path = bpy.path.abspath(strip.directory, library=strip.id_data.library)
        files = [element.filename for element in strip.elements]
        missing = [name for name in files if not os.path.isfile(os.path.join(path, name))]
        if not os.path.isdir(path) or missing:
            raise StripProblem(f"Image strip '{strip.name}' lacks {len(missing) or len(files)} of its {len(files)} images in "
                               f"{path}. Relink them (Strip > Image Strip > Change Path) and try again.")
        total, kind, fps = len(files), "images", _scene_fps(scene)
    if kind == "images" and total == 1:  # a still: one image held for the strip's length
        shown = jobstate.MediaRange(0, 1, strip.frame_final_start)
        return StripMedia(name=strip.name, kind=kind, path=os.path.normpath(path), shown=shown, channel=strip.channel,
                          fps=fps, visible_files=tuple(files), still_frames=strip.frame_final_duration)
    try:
        shown = jobstate.visible_media_range(strip.frame_start, strip.frame_final_start, strip.frame_final_end, total,
                                             getattr(strip, "animation_offset_start", 0))
        visible: tuple[str, ...] = ()
        if files is not None:
            visible = tuple(files[shown.first:shown.end])
            shown = jobstate.image_folder_range(os.listdir(path), files, shown)
    except ValueError as exc:
        raise StripProblem(f"Strip '{strip.name}': {exc}.") from None
    return StripMedia(name=strip.name, kind=kind, path=os.path.normpath(path), shown=shown, channel=strip.channel, fps=fps,
                      visible_files=visible)


def retiming_warning(strip) -> str | None:
    """Retimed strips are read 1:1 from their media (the API does not expose the speed curve)."""
    if len(getattr(strip, "retiming_keys", ())):
        return (f"Strip '{strip.name}' has retiming keys: the motion is read frame by frame from its media, so the result "
                "may not line up where the speed changes")
    return None


def occupied(editor) -> list[tuple[int, int, int]]:
    return [(s.channel, s.frame_final_start, s.frame_final_end) for s in top_level(editor)]


def new_strip(collection, constructor: str, name: str, filepath: str, channel: int, frame_start: int, fit: str):
    """`fit_method` is a keyword in 4.2 and 5.x; a build without it still gets its strip."""
    make = getattr(collection, constructor)
    try:
        return make(name=name, filepath=filepath, channel=channel, frame_start=frame_start, fit_method=fit)
    except TypeError:
        return make(name=name, filepath=filepath, channel=channel, frame_start=frame_start)


@dataclasses.dataclass(frozen=True)
class ResultStrip:
    """How a job's frames go on the timeline: `length` frames (more than the files: the last is held),
    `blend` (e.g. SCREEN: a preview's stick figures over the footage below), `made_by` the job kind."""

    name: str
    folder: str
    files: list[str]
    above_channel: int
    frame_start: int
    length: int = 0  # 0: one frame per file
    blend: str | None = None
    made_by: str = ""


def add_image_sequence(scene, result: ResultStrip, fit: str = "FIT"):
    """An image strip of the result's files (in order) on the first channel above `above_channel` free for
    its whole length. The active strip stays active (the next job's source), nothing is selected; the
    strip is marked as edn's, so it is never taken for a source. With a saved .blend its folder is
    stored relative to it, so the project can move."""
    editor = scene.sequence_editor or scene.sequence_editor_create()
    length = max(result.length, len(result.files))
    channel = jobstate.first_free_channel(occupied(editor), result.above_channel, result.frame_start, result.frame_start + length)
    strip = new_strip(top_level(editor), "new_image", result.name, os.path.join(result.folder, result.files[0]), channel,
                      result.frame_start, fit)
    for filename in result.files[1:]:
        strip.elements.append(filename)
    # new_image sizes the strip from its first element; make sure it spans every frame appended.
    strip.frame_final_duration = length
    strip.select = False
    if result.blend:
        strip.blend_type = result.blend
    if result.made_by:
        strip[MADE_BY_EDN] = result.made_by
    if bpy.data.filepath:
        strip.directory = bpy.path.relpath(strip.directory)
    return strip


def add_movie(scene, name: str, filepath: str, channel: int, frame_start: int, fit: str = "FIT"):
    editor = scene.sequence_editor or scene.sequence_editor_create()
    return new_strip(top_level(editor), "new_movie", name, filepath, channel, frame_start, fit)


def find_strip(scene, name: str):
    editor = scene.sequence_editor if scene is not None else None
    return all_strips(editor).get(name) if editor is not None and name else None


def set_ffmpeg_output(scene, filepath: str, codec: str = "H264") -> None:
    """Movie output: 5.x wants image_settings.media_type='VIDEO' before FFMPEG can be chosen."""
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):
        settings.media_type = "VIDEO"
    settings.file_format = "FFMPEG"
    scene.render.ffmpeg.format = "MPEG4"
    scene.render.ffmpeg.codec = codec
    scene.render.filepath = filepath


def tag_sequencer_redraw() -> None:
    """Redraw every Sequencer area (and the preferences, which show the server status)."""
    wm = getattr(bpy.context, "window_manager", None)
    for window in getattr(wm, "windows", ()):
        for area in window.screen.areas:
            if area.type in ("SEQUENCE_EDITOR", "PREFERENCES"):
                area.tag_redraw()
