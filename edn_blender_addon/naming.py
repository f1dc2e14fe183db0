"""Names a user reads: a new model's default name, short unique result strip names, and a trained
model's line in the Target menu. No bpy."""
from __future__ import annotations

import os
import re

STRIP_NAME_BYTES = 60  # Blender keeps 61 bytes of a strip name (and cuts mid-character); room for a " 2" too
_PART_BYTES = 26  # each of source and target in '<source> > <target>'
_MODEL_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def default_model_name(strip_name: str) -> str:
    """The strip's name as a model name the server accepts (letters, digits, space, '.', '_', '-'),
    without a movie's extension: 'anna_target.mp4' -> 'anna_target'."""
    name = _MODEL_UNSAFE.sub("_", os.path.splitext(strip_name)[0]).strip(" ._-")
    return (name or "target")[:100]


def shorten(text: str, limit: int) -> str:
    """`text` within `limit` UTF-8 bytes, cut after a whole word when it must be cut, marked with '…'."""
    if len(text.encode()) <= limit:
        return text
    room = limit - len("…".encode())
    cut = text.encode()[:room].decode(errors="ignore")
    ends_a_word = text[len(cut):len(cut) + 1] in (" ", "")
    words = cut if ends_a_word or " " not in cut.strip() else cut.rsplit(" ", 1)[0]  # one long word is cut where it must
    return words.rstrip(" ._-") + "…"


def result_strip_name(source: str, target: str, kind: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """'<source> > <target>' for transfers, '<source> poses' for previews; short enough for Blender,
    cut between words, and not one of the names `taken` (a second result gets ' 2', ' 3'...)."""
    if kind == "preview_poses":
        base = f"{shorten(source, STRIP_NAME_BYTES - len(' poses') - 3)} poses"
    else:
        base = f"{shorten(source, _PART_BYTES)} > {shorten(target, _PART_BYTES)}"
    name, number = base, 2
    while name in taken:
        name, number = f"{base} {number}", number + 1
    return name


def _thousands(value: int) -> str:
    return f"{value:,}".replace(",", " ")


def model_label(model: dict) -> str:
    """The Target menu's line for an entry of the server's model list: 'anna · person · 3 200 steps · 12 min'
    (the mode, person or full-frame, only when the server says it)."""
    info = model.get("info") or {}
    parts = [str(model.get("name", "?"))]
    if model.get("mode"):
        parts.append(str(model["mode"]))
    steps = info.get("steps")
    if isinstance(steps, int):
        parts.append(f"{_thousands(steps)} steps")
    seconds = (info.get("training") or {}).get("seconds")
    if isinstance(seconds, int | float):
        parts.append(f"{max(1, round(seconds / 60))} min" if seconds >= 30 else f"{round(seconds)} s")
    return " · ".join(parts)


def model_description(model: dict) -> str:
    """The Target menu's tooltip: an under-trained model's warning first, then what its mode gives."""
    name, mode, reason = model.get("name", "?"), model.get("mode"), str(model.get("mode_reason") or "").rstrip(".")
    about = {"person": f"Person model '{name}': the person over the target's background, or alone with alpha",
             "full-frame": f"Full-frame model '{name}': whole frames, no alpha" + (f" ({reason})" if reason else "")}
    parts = [(model.get("warning") or {}).get("message") or "", about.get(str(mode), f"Trained target '{name}'")]
    return ". ".join(p.rstrip(".") for p in parts if p)
