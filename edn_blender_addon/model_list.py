"""The server's trained target models, for the sidebar's Target drop-down, and deleting one. No bpy."""
from __future__ import annotations

from collections.abc import Callable

from .client import ServerError
from .connection import ServerSettings, client_for
from .session import state


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


def delete(settings: ServerSettings, name: str, on_done: Callable[[ServerError | None], None]) -> bool:
    """Delete the model on the server in the background; `on_done(error)` runs on the main thread
    after the list was dropped from here. False when a delete is already under way."""

    def deleted(value, error) -> None:
        if error is None:
            state.models = [m for m in state.models if m.get("name") != name]
            forget()
        on_done(error)

    return state.runner.start("delete model", lambda: client_for(settings, start=True).delete_model(name), deleted)
