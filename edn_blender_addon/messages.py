"""The server's messages in Blender's words. No bpy.

The HTTP API keeps its own wording (routes, parameter names, 0-based half-open frame ranges); in
Blender a message names buttons, fields and the timeline frames the user sees. Codes are the
server's stable error codes (edn_server.errors), pinned by tests/addon/test_server_facts.py.
"""
from __future__ import annotations

import dataclasses
import re

MODEL_EXISTS, MODEL_NOT_FOUND, NO_PERSON = "MODEL_EXISTS", "MODEL_NOT_FOUND", "NO_PERSON"
BAD_PARAMS, BAD_CHECKPOINT, UNDER_TRAINED = "BAD_PARAMS", "BAD_CHECKPOINT", "UNDER_TRAINED"

# request fields -> what the sidebar calls them
FIELD_LABELS = {
    "params.output_dir": "Output Folder", "params.name": "Model Name", "params.minutes": "Time Budget",
    "params.preset": "Quality", "params.normalization.scale": "Scale", "params.normalization.offset_x": "Offset X",
    "params.normalization.offset_y": "Offset Y", "params.smooth": "Smoothing", "params.model": "Target",
    "params.target_model": "Target", "params.pose_model": "Pose Model", "params.face": "Face Refinement",
    "params.output": "Output", "params.output_height": "Output Height",
}
_FRAMES = re.compile(r"[Ff]rames \[(\d+), (\d+)\)")
_PYDANTIC = re.compile(r"^(Value error|Assertion failed), ")


@dataclasses.dataclass(frozen=True)
class Where:
    """What the job was about, to name it the way the timeline shows it."""

    strip: str = ""
    model: str = ""
    media_first: int = 0  # the media frame the strip's first visible frame shows
    timeline_start: int = 1  # the timeline frame it sits on


def timeline_frames(text: str, where: Where) -> str:
    """'frames [3, 19)' (0-based media frames, end excluded) -> 'timeline frames 14-29' of the strip."""

    def swap(match: re.Match) -> str:
        first = where.timeline_start + int(match.group(1)) - where.media_first
        last = where.timeline_start + int(match.group(2)) - 1 - where.media_first
        return f"timeline frames {first}-{last}"

    return _FRAMES.sub(swap, text)


def _bad_setting(message: str, field: str) -> str:
    label = FIELD_LABELS.get(field, field.rsplit(".", 1)[-1].replace("_", " ").title())
    reason = message.split(" is invalid: ", 1)[-1] if " is invalid: " in message else message
    reason = _PYDANTIC.sub("", reason).rstrip(".")
    return f"The {label} setting cannot be used: {reason}. Change {label} in the sidebar and try again."


def for_blender(code: str, message: str, field: str | None = None, where: Where = Where()) -> str:
    """The sentence the sidebar shows for a server error or warning."""
    model = f"'{where.model}'" if where.model else "this name"
    strip = f" of strip '{where.strip}'" if where.strip else ""
    if code == MODEL_EXISTS:
        return (f"A model named {model} exists: press Resume Training to train it for more minutes, or type a new "
                "Model Name (Train Target panel).")
    if code == MODEL_NOT_FOUND:
        if field == "params.name":
            return f"There is no model named {model} to resume: train it first with Train Target Model."
        return (f"The server has no trained model named {model}. Press Refresh Models and choose a Target, "
                "or train one with Train Target Model.")
    if code == UNDER_TRAINED:
        return (message.split(" Continue its training", 1)[0] + " Press Resume Training (Train Target panel) "
                "to train it for more minutes.")
    if code == BAD_CHECKPOINT and "other frames" in message:
        return (f"Resume Training needs the strip model {model} was trained on, showing the same frames. Make that "
                "strip active, or train a new model under another Model Name.")
    if code == BAD_PARAMS and field and field.startswith("params."):
        return _bad_setting(message, field)
    text = timeline_frames(message, where)
    if strip and "timeline frames" in text:
        text = re.sub(r"(timeline frames \d+-\d+) of .+?(?=[;.] |[;.]$)", rf"\1{strip}", text, count=1)
    if code == NO_PERSON:
        text = text.replace("or try the 'heavy' model", "or set Pose Model to Heavy in the sidebar")
    return text
