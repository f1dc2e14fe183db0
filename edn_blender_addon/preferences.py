"""Add-on preferences: where the server is (a local one the add-on runs, or a remote URL + token),
plus Test Connection, Start/Stop Server and the server log's path."""

import functools
import os
from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from . import launcher
from .connection import LOCAL, REMOTE, ServerSettings, settings_problem
from .server_status import draw_status

PACKAGE = __package__

SERVER_MODE_HELP = "Where the edn server runs: on this computer, or on another machine reached over the network"
MODES = [
    (LOCAL, "Local", "Run the edn server on this computer (started by the add-on, reused while it runs)"),
    (REMOTE, "Remote", "Use an edn server on another machine (e.g. a GPU box); needs online access, a URL and a token"),
]


@functools.cache
def user_dir() -> Path:
    """The extension's own writable folder (server log, downloads for unsaved files)."""
    try:
        return Path(bpy.utils.extension_path_user(PACKAGE, create=True))
    except (ValueError, AttributeError):  # loaded as a legacy add-on, not as an extension
        return Path(bpy.utils.user_resource("SCRIPTS", path=os.path.join("addons", "edn_data"), create=True))


def log_path() -> str:
    return str(user_dir() / "server.log")


@functools.cache
def detected_python() -> str:
    return launcher.find_project_python(Path(__file__).parent) or ""


class EDN_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = PACKAGE

    mode: EnumProperty(name="Server", items=MODES, default=LOCAL, description=SERVER_MODE_HELP)
    python_path: StringProperty(name="Python", subtype="FILE_PATH",
                                description="Python with edn_server installed (empty: $EDN_PYTHON, the project's .venv "
                                            "found above the add-on's folder, or the Python the last server on the data "
                                            "folder ran with)")
    data_dir: StringProperty(name="Data Folder", subtype="DIR_PATH",
                             description="Where the local server keeps jobs and trained models (empty: $EDN_HOME or "
                                         "~/.local/share/edn, as for the edn command)")
    remote_url: StringProperty(name="URL", description="The remote server, e.g. http://gpu-box:8765")
    remote_token: StringProperty(name="Token", subtype="PASSWORD",
                                 description="The remote server's token (from its token file)")

    def draw(self, context) -> None:
        layout = self.layout
        layout.row().prop(self, "mode", expand=True)
        settings = server_settings(context)
        box = layout.box()
        if self.mode == LOCAL:
            box.prop(self, "python_path")
            if not self.python_path:
                box.label(text=f"Using: {settings.python or 'not found: set the Python above'}", icon="INFO")
            box.prop(self, "data_dir")
            if not self.data_dir:
                box.label(text=f"Using: {settings.local.data_dir}", icon="INFO")
            box.label(text=f"Server log: {settings.log_path}", icon="TEXT")
        else:
            box.prop(self, "remote_url")
            box.prop(self, "remote_token")
            problem = settings_problem(settings)
            if problem is not None:
                box.label(text=problem.message, icon="ERROR")
        draw_status(layout.box())
        row = layout.row()
        row.operator("edn.test_connection", icon="LINKED")
        if self.mode == LOCAL:
            row.operator("edn.start_server", icon="PLAY")
            row.operator("edn.stop_server", icon="X")


def server_settings(context) -> ServerSettings:
    """A snapshot of the preferences for background threads (read on the main thread)."""
    addon = context.preferences.addons.get(PACKAGE)
    prefs = addon.preferences if addon is not None else None
    online = bool(getattr(bpy.app, "online_access", True))
    data_dir = bpy.path.abspath(prefs.data_dir) if prefs is not None and prefs.data_dir else ""
    python = bpy.path.abspath(prefs.python_path) if prefs is not None and prefs.python_path else (
        detected_python() or launcher.recorded_python(data_dir or launcher.default_data_dir()) or "")
    if prefs is None:
        return ServerSettings(python=python, log_path=log_path(), online_access=online)
    return ServerSettings(mode=prefs.mode, python=python, data_dir=data_dir, log_path=log_path(),
                          url=prefs.remote_url, token=prefs.remote_token, online_access=online)


CLASSES = (EDN_AddonPreferences,)
