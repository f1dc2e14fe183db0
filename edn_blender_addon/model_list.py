"""The server's trained target models, for the sidebar's Target drop-down. No bpy."""
from __future__ import annotations

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
    """A model was trained: the list is stale."""
    state.models_loaded = False


def names() -> list[str]:
    return [m["name"] for m in state.models]
