"""Which server the add-on talks to, as a frozen snapshot of the preferences (taken on the main
thread, handed to background threads). No bpy."""
from __future__ import annotations

import dataclasses
import ipaddress
import urllib.parse

from . import launcher
from .client import EdnClient, ServerError

LOCAL, REMOTE = "LOCAL", "REMOTE"
OFFLINE = "OFFLINE"
NOT_CONFIGURED = "NOT_CONFIGURED"


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    mode: str = LOCAL
    python: str = ""
    data_dir: str = ""
    log_path: str = ""
    url: str = ""
    token: str = ""
    online_access: bool = False
    timeout_s: float = 10.0

    @property
    def local(self) -> launcher.LocalServer:
        return launcher.LocalServer(python=self.python, data_dir=self.data_dir or str(launcher.default_data_dir()),
                                    log_path=self.log_path)

    @property
    def is_remote(self) -> bool:
        return self.mode == REMOTE

    def describe(self) -> str:
        return self.url if self.is_remote else f"local server (data in {self.local.data_dir})"


def is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def settings_problem(settings: ServerSettings) -> ServerError | None:
    """What stops these settings from being used at all, checked without any I/O."""
    if not settings.is_remote:
        return None
    if not settings.url.strip():
        return ServerError(NOT_CONFIGURED, "Remote server mode needs the server's URL: set it in the add-on "
                                           "preferences (e.g. http://gpu-box:8765), or switch to Local.")
    if not settings.online_access and not is_loopback(settings.url):
        return ServerError(OFFLINE, "Blender's online access is off, so the add-on may not reach a remote server. "
                                    "Allow it in Preferences > System > Network (Allow Online Access), or use a local server.")
    if not settings.token.strip():
        return ServerError(NOT_CONFIGURED, "Remote server mode needs the server's token: copy it from the token file "
                                           "on the server machine into the add-on preferences.")
    return None


def client_for(settings: ServerSettings, start: bool = True) -> EdnClient:
    """A client for the configured server. Local: reuse the running server, or start it when `start`
    (seconds: call from a background thread); without `start` a stopped server is NOT_RUNNING."""
    problem = settings_problem(settings)
    if problem is not None:
        raise problem
    if settings.is_remote:
        return EdnClient(settings.url, settings.token, timeout=settings.timeout_s)
    client = launcher.running_client(settings.local.data_dir, timeout=settings.timeout_s)
    if client is not None:
        return client
    if not start:
        raise ServerError(launcher.NOT_RUNNING, "The local edn server is not running; it starts with the first job, "
                                                "or use Start Server in the add-on preferences.")
    return launcher.start_server(settings.local)
