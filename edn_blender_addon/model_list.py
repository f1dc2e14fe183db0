"""The server's trained target models, for the sidebar's Target drop-down, and deleting one. No bpy."""
from __future__ import annotations

from collections.abc import Callable

from .client import ServerError
from .connection import ServerSettings, client_for
from .session import state

FULL_FRAME = "full-frame"  # a model's mode as GET /v1/models says it (edn_server.names), besides "person"


def refresh(settings: ServerSettings, start: bool = True) -> None:
    """Fetch the list in the background; `start` starts a stopped local server (Refresh Models does)."""
    state.models_error = ""

    def on_done(models, error) -> None:
        if error is not None:
            state.models_error = error.message
            return
        state.models, state.models_loaded, state.models_error = models, True, ""

    state.runner.start("models", lambda: client_for(settings, start=start).models(), on_done)


def refresh_when_needed(settings: ServerSettings) -> None:
    """Once the server answers, fetch the list if it was never fetched (or a new model made it stale);
    after an error only Refresh Models tries again."""
    if state.server.ok and not state.models_loaded and not state.models_error:
        refresh(settings, start=False)


def forget() -> None:
    """A model was trained or deleted: the list is stale."""
    state.models_loaded = False


def models() -> list[dict]:
    """The server's list as last fetched: {name, info: {steps, training, preset...}, warning}."""
    return list(state.models)


def names() -> list[str]:
    return [m["name"] for m in state.models]


def find(name: str) -> dict:
    """The list's entry for the model `name`, or {} when the list lacks it."""
    return next((m for m in state.models if m.get("name") == name), {})


def alpha_refusal(name: str) -> str | None:
    """Why the model `name` cannot give Output: Person with Alpha (a full-frame model generates whole
    frames, with no alpha), or None; a model the list lacks is left to the server to judge."""
    model = find(name)
    if model.get("mode") != FULL_FRAME:
        return None
    reason = str(model.get("mode_reason") or "its target's background is not static").rstrip(".")
    return (f"Model '{name}' is full-frame ({reason}), so it has no alpha: set Output to Composite, or train a model "
            "on a clip of the target filmed with a still camera")


def delete(settings: ServerSettings, name: str, on_done: Callable[[ServerError | None], None]) -> bool:
    """Delete the model on the server in the background; `on_done(error)` runs on the main thread
    after the list was dropped from here. False when a delete is already under way."""

    def deleted(value, error) -> None:
        if error is None:
            state.models = [m for m in state.models if m.get("name") != name]
            forget()
        on_done(error)

    return state.runner.start("delete model", lambda: client_for(settings, start=True).delete_model(name), deleted)
