"""`edn serve`: start the job server on a data dir, with a token, a lock and a discovery file.

server.json (written once the socket accepts connections, removed on clean shutdown) tells a
client where the server for this data dir listens; the lock keeps a second server off the same
data dir (two schedulers would each call the other's running jobs interrupted).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import secrets
import socket
import stat
import tempfile
from pathlib import Path

from .. import config
from ..atomic import atomic_file
from ..errors import BAD_PARAMS, OUTPUT_UNWRITABLE, SERVER_RUNNING, EdnError
from .api import API_VERSION, ServerState, create_app
from .guard import GuardConfig, allowed_hosts
from .job_table import JobStore
from .uploads import Uploads
from .workers import Scheduler

log = logging.getLogger("edn.serve")

DISCOVERY_FILE = "server.json"
TOKEN_FILE = "token"
LOCK_FILE = "server.lock"
GiB, MiB = 1 << 30, 1 << 20
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port (read the real one from server.json)
    data_dir: Path | None = None  # default: config.data_dir()
    allow_hosts: tuple[str, ...] = ()
    max_upload_bytes: int = 4 * GiB
    max_body_bytes: int = 1 * MiB
    light_workers: int = 2
    log_level: str = "info"
    roots: tuple[Path, ...] = ()  # confine media paths and output folders here; none: the data dir when not on loopback


def server_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("edn-server")
    except PackageNotFoundError:
        return "unknown"


def ensure_token(data_dir: Path) -> Path:
    """A random token in <data dir>/token, readable by this user only; created once and reused."""
    path = data_dir / TOKEN_FILE
    if path.is_file() and path.read_text().strip():
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, 0o600)
        return path
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    return path


def read_discovery(data_dir: Path) -> dict | None:
    try:
        return json.loads((Path(data_dir) / DISCOVERY_FILE).read_text())
    except (OSError, ValueError):
        return None


def _lock_data_dir(data_dir: Path):
    """Hold an exclusive lock for the life of the process; the OS releases it even after kill -9."""
    handle = open(data_dir / LOCK_FILE, "a+")
    try:
        import fcntl

        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            handle.close()
            raise BlockingIOError from None
    except BlockingIOError:
        handle.close()
        raise
    return handle


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it every keep-alive response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise EdnError(BAD_PARAMS, f"Cannot listen on {host}:{port} ({exc.strerror}). Choose another --port (0 picks a free one) "
                                   "or --host.") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _client_url(host: str, port: int) -> str:
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def _lifespan(scheduler: Scheduler):
    @contextlib.asynccontextmanager
    async def manage(app):
        scheduler.start()
        try:
            yield
        finally:
            scheduler.stop()

    return manage


def confinement(options: ServeOptions, data_dir: Path) -> tuple[str, ...] | None:
    """The folders requests may name: the --root folders; else, off loopback, only the data dir."""
    missing = [str(root) for root in options.roots if not Path(root).expanduser().is_dir()]
    if missing:
        raise EdnError(BAD_PARAMS, f"--root {missing[0]} is not a folder. Name an existing folder.")
    if options.roots:
        roots = tuple(os.path.realpath(Path(root).expanduser()) for root in options.roots)
    else:
        roots = None if options.host in LOOPBACK_HOSTS else (os.path.realpath(data_dir),)
    if roots is not None:
        log.warning("media paths and output folders are confined to %s", ", ".join(roots))
    return roots


def _build(options: ServeOptions, data_dir: Path, token: str, port: int):
    store = JobStore(data_dir / "jobs.sqlite3")
    from .job_kinds import builtin_kinds

    kinds = builtin_kinds()
    kinds.load_plugins()
    scheduler = Scheduler(store, kinds, data_dir, light_workers=options.light_workers)
    uploads = Uploads(data_dir / "uploads", options.max_upload_bytes)
    uploads.remove_partials()
    state = ServerState(data_dir=data_dir, store=store, scheduler=scheduler, kinds=kinds, uploads=uploads, version=server_version(),
                        roots=confinement(options, data_dir))
    guard = GuardConfig(token=token, allowed_hosts=allowed_hosts(options.host, port, options.allow_hosts),
                        max_body_bytes=options.max_body_bytes, max_upload_bytes=options.max_upload_bytes)
    return state, create_app(state, guard, lifespan=_lifespan(scheduler))


def run_server(options: ServeOptions) -> int:
    import uvicorn

    if options.light_workers < 1:
        raise EdnError(BAD_PARAMS, f"--light-workers {options.light_workers} would never run pose jobs; use 1 or more.")
    data_dir = Path(options.data_dir or config.data_dir()).expanduser().resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.TemporaryFile(dir=data_dir):
            pass
    except OSError as exc:
        raise EdnError(OUTPUT_UNWRITABLE, f"Data dir {data_dir} is not a folder this server may write to ({exc.strerror or exc}). "
                                          "Pass another --data-dir, or fix its permissions.") from None
    os.environ["EDN_HOME"] = str(data_dir)  # so the pose cache and everything else agree on the data dir
    # Torch is imported later, by the first heavy job. Leave one core to Blender, video decoding and
    # the HTTP loop: with every core busy, OpenMP threads spin against each other (measured here on
    # 2 cores with another process running: 12 tiny training steps took 43 s on 2 threads, 3.9 s on 1).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) - 1)))
    logging.basicConfig(level=options.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    try:
        lock = _lock_data_dir(data_dir)
    except BlockingIOError:
        running = read_discovery(data_dir) or {}
        raise EdnError(SERVER_RUNNING, f"A server already runs on data dir {data_dir} ({running.get('url', 'starting up')}, "
                                       f"pid {running.get('pid', '?')}). Use it, stop it, or pass another --data-dir.") from None
    token_file = ensure_token(data_dir)
    config.record_python(data_dir)  # the add-on's default Python for starting this server again
    if options.host not in LOOPBACK_HOSTS:
        log.warning("listening on %s: other machines can reach this server; they still need the token in %s",
                    options.host, token_file)
    sock = _bind(options.host, options.port)
    port = sock.getsockname()[1]
    url = _client_url(options.host, port)
    discovery = {"url": url, "pid": os.getpid(), "version": server_version(), "api_version": API_VERSION,
                 "token_file": str(token_file), "data_dir": str(data_dir)}

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                with atomic_file(data_dir / DISCOVERY_FILE, suffix=".json") as tmp:
                    tmp.write_text(json.dumps(discovery, indent=2))
                print(f"edn server listening on {url} (data dir {data_dir}; token in {token_file})", flush=True)

        async def shutdown(self, sockets=None) -> None:
            if (read_discovery(data_dir) or {}).get("pid") == os.getpid():
                (data_dir / DISCOVERY_FILE).unlink(missing_ok=True)
            await super().shutdown(sockets=sockets)

    _, app = _build(options, data_dir, token_file.read_text().strip(), port)
    server = Server(uvicorn.Config(app, log_level=options.log_level, access_log=False, lifespan="on", server_header=False,
                                   timeout_graceful_shutdown=5))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        lock.close()
    return 0
