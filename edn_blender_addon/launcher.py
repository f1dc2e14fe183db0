"""Find, start, reuse and stop the local edn server. No bpy: it runs in background threads.

A server announces itself in <data dir>/server.json (url, pid, token file) once it accepts
connections; the add-on reuses any live server found there, and otherwise starts
`<python> -m edn_server serve --port 0 --data-dir <dir>` detached, logging to a file, and waits
for that file to name the new process.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .client import EdnClient, ServerError

NOT_RUNNING = "NOT_RUNNING"
START_FAILED = "START_FAILED"
PYTHON_MISSING = "PYTHON_MISSING"

PYTHON_ENV = "EDN_PYTHON"
DISCOVERY_FILE = "server.json"
SERVER_PYTHON_FILE = "server_python"  # edn_server.config's: every `edn serve` (and make setup) writes its Python there

_start_lock = threading.Lock()
_started: dict[str, subprocess.Popen] = {}  # data dir -> the server process this Blender started


@dataclasses.dataclass(frozen=True)
class LocalServer:
    """How to run the local server: its Python, its data dir and where its log goes."""

    python: str
    data_dir: str
    log_path: str
    start_timeout_s: float = 90.0


def default_data_dir(env: dict | None = None) -> Path:
    """The server's own default (edn_server.config.data_dir), so the CLI and the add-on share jobs and models."""
    env = os.environ if env is None else env
    if env.get("EDN_HOME"):
        return Path(env["EDN_HOME"]).expanduser()
    base = env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base).expanduser() / "edn"


def _venv_python(root: Path) -> Path:
    return root / ".venv" / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def find_project_python(start: str | os.PathLike, env: dict | None = None) -> str | None:
    """$EDN_PYTHON, else the .venv of the first folder above `start` that holds the edn project
    (server/edn_server beside .venv), else None."""
    env = os.environ if env is None else env
    if env.get(PYTHON_ENV):
        return env[PYTHON_ENV]
    for folder in (Path(start).resolve(), *Path(start).resolve().parents):
        python = _venv_python(folder)
        if python.exists() and (folder / "server" / "edn_server").is_dir():
            return str(python)
    return None


def recorded_python(data_dir: str | os.PathLike) -> str | None:
    """The Python the last server on `data_dir` ran with (<data dir>/server_python), if it still exists:
    a zip-installed extension finds no project .venv above itself, but this file once any server ran."""
    try:
        python = (Path(data_dir).expanduser() / SERVER_PYTHON_FILE).read_text().strip()
    except OSError:
        return None
    return python if python and Path(python).is_file() else None


def read_discovery(data_dir: str | os.PathLike) -> dict | None:
    try:
        info = json.loads((Path(data_dir) / DISCOVERY_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("url") else None


def _client_from(info: dict, timeout: float) -> EdnClient:
    try:
        token = Path(info["token_file"]).read_text().strip()
    except (KeyError, OSError) as exc:
        raise ServerError(START_FAILED, f"The server's token file could not be read ({exc}). Stop the server and start "
                                        "it again from the add-on preferences.") from None
    return EdnClient(info["url"], token, timeout=timeout)


def running_client(data_dir: str | os.PathLike, timeout: float = 10.0) -> EdnClient | None:
    """A client for a live, authenticated server on `data_dir`, or None when none answers."""
    info = read_discovery(data_dir)
    if info is None:
        return None
    client = _client_from(info, timeout)
    try:
        client.health(timeout=min(timeout, 3.0))
    except ServerError as exc:
        if exc.code == "UNAUTHORIZED":
            raise
        return None  # a stale server.json: the process died without removing it
    return client


def _log_tail(path: str, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _spawn(server: LocalServer) -> subprocess.Popen:
    python = Path(server.python).expanduser() if server.python else None
    if python is None or not python.is_file():
        raise ServerError(PYTHON_MISSING, f"No Python for the edn server at {server.python or '(not set)'}. Set Python in the "
                                          "add-on preferences to the edn project's .venv/bin/python (or set EDN_PYTHON), or "
                                          "run `make setup` or `edn serve` in the project once, so the add-on finds it.")
    data_dir = Path(server.data_dir).expanduser()
    data_dir.mkdir(parents=True, exist_ok=True)
    Path(server.log_path).parent.mkdir(parents=True, exist_ok=True)
    command = [str(python), "-m", "edn_server", "serve", "--port", "0", "--data-dir", str(data_dir)]
    detach: dict = {"start_new_session": True} if os.name == "posix" else {
        "creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS}
    with open(server.log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(command)}\n".encode())
        log.flush()
        # Detached so the server outlives Blender (the next session reuses it) and a Ctrl-C in
        # Blender's terminal does not reach it.
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                close_fds=True, **detach)


def start_server(server: LocalServer) -> EdnClient:
    """Reuse the live server on the data dir, or start one and wait until it answers."""
    with _start_lock:
        client = running_client(server.data_dir)
        if client is not None:
            return client
        process = _spawn(server)
        _started[str(Path(server.data_dir).expanduser())] = process
        deadline = time.monotonic() + server.start_timeout_s
        while time.monotonic() < deadline:
            info = read_discovery(server.data_dir)
            if info is not None and info.get("pid") == process.pid:
                return _client_from(info, 10.0)
            if process.poll() is not None:
                # Another server may have won the data dir's lock a moment earlier: use that one.
                client = running_client(server.data_dir)
                if client is not None:
                    return client
                raise ServerError(START_FAILED, f"The edn server exited at start (code {process.returncode}). Its log "
                                                f"({server.log_path}) ends with:\n{_log_tail(server.log_path)}")
            time.sleep(0.1)
        raise ServerError(START_FAILED, f"The edn server did not come up within {server.start_timeout_s:g} s. "
                                        f"See its log: {server.log_path}")


def _is_edn_server(pid: int) -> bool:
    """Guard before signalling a pid read from a file: on Linux, check it really is an edn server."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():
        return True  # no /proc (macOS, Windows): trust server.json, which the server removes when it exits
    try:
        parts = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serve" in parts and any(b"edn_server" in part or part.endswith(b"edn") for part in parts)


def stop_server(data_dir: str | os.PathLike, timeout_s: float = 15.0) -> bool:
    """SIGTERM the server named in the data dir's server.json and wait for it to exit; False when none runs."""
    info = read_discovery(data_dir)
    if info is None or not isinstance(info.get("pid"), int) or not _is_edn_server(info["pid"]):
        return False
    pid = info["pid"]
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    process = _started.pop(str(Path(data_dir).expanduser()), None)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return True
        if process is None and not _alive(pid):
            return True
        time.sleep(0.1)
    raise ServerError(START_FAILED, f"The edn server (pid {pid}) did not stop within {timeout_s:g} s; end it from "
                                    "your system's task manager.")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ", 1)[1][0] != "Z"  # a zombie (exited, not yet reaped) is not alive
    except (OSError, IndexError):
        return True
