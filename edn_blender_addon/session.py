"""What the add-on knows in this Blender session and saves nowhere: the server's status, its model
list, the background calls under way and each job's bookkeeping between polls. No bpy.

The job records themselves live in the scene (saved in the .blend); this is the main thread's
working memory beside them. Panels draw from it, so drawing never waits on the server.
"""
from __future__ import annotations

import dataclasses
import threading

from .background import Runner


@dataclasses.dataclass
class ServerStatus:
    code: str = "UNKNOWN"  # OK, or the error code of the last check
    message: str = "Not checked yet"
    version: str = ""
    device: str = ""
    checked: float = 0.0  # time.monotonic() of the last check

    @property
    def ok(self) -> bool:
        return self.code == "OK"


@dataclasses.dataclass
class JobTrack:
    """One job record's bookkeeping while this session works on it."""

    next_poll: float = 0.0  # time.monotonic() when the job's state is fetched next
    cancel_when_sent: bool = False  # Cancel was pressed before the server knew the job
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)  # ends an upload or download in flight
    # (verb, bytes done, bytes in all) of an upload or download; written by the thread moving the bytes
    transfer: tuple[str, int, int] | None = None
    sample_tag: str = ""  # the ETag of the held-out sample shown (a train job's), so an unchanged one is not fetched again
    sample_due: float = 0.0  # time.monotonic() when the sample is asked for next


@dataclasses.dataclass
class SessionState:
    runner: Runner = dataclasses.field(default_factory=Runner)
    server: ServerStatus = dataclasses.field(default_factory=ServerStatus)
    models: list[dict] = dataclasses.field(default_factory=list)
    models_loaded: bool = False
    models_error: str = ""
    jobs: dict[str, JobTrack] = dataclasses.field(default_factory=dict)  # by record uid

    def track(self, uid: str) -> JobTrack:
        return self.jobs.setdefault(uid, JobTrack())

    def transfer(self, uid: str) -> tuple[str, int, int] | None:
        track = self.jobs.get(uid)
        return track.transfer if track is not None else None

    def busy(self) -> bool:
        return self.runner.busy()

    def reset(self) -> None:
        """Forget everything, in place (modules keep their reference). Calls still under way report to
        the old runner, whose outcomes nobody delivers any more."""
        fresh = SessionState()
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(fresh, field.name))


state = SessionState()
