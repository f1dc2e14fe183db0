"""Worker threads that run queued jobs: heavy ones one at a time, light ones beside them.

The job store is the queue, so nothing is lost when the process dies: on start, jobs that were
running end `interrupted` (or are queued again when their kind can resume) and queued ones run.
"""
from __future__ import annotations

import gc
import logging
import os
import threading
import time
from pathlib import Path

from pydantic import ValidationError

from ..atomic import remove_partials
from ..errors import BAD_PARAMS, CANCELLED, INTERNAL, INTERRUPTED, NOT_IMPLEMENTED, OUT_OF_MEMORY, EdnError
from ..gan.device import is_out_of_memory, release_cached_memory
from ..media import DISK_ERRNOS, disk_error
from ..names import SETUP_STAGES, stage_family
from . import job_table as js
from .job_contract import JobContext, JobKind, JobKinds, field_of, media_from_stored
from .job_table import JobStore

log = logging.getLogger("edn.scheduler")

PROGRESS_WRITE_INTERVAL_S = 0.2
STRICT_STAGES_ENV = "EDN_STRICT_STAGES"  # "1": a stage name a kind did not declare raises (set by the tests)
_unknown_stages_logged: set[tuple[str, str]] = set()
IDLE_POLL_S = 1.0
RECORD_RETRY_S = (0.1, 0.5, 2.0)  # a locked database frees up in moments; a full disk is then retried every poll

CANCELLED_ERROR = EdnError(CANCELLED, "The job was cancelled; nothing half-written was kept.").to_dict()
INTERRUPTED_ERROR = EdnError(
    INTERRUPTED, "The server stopped while this job was running (it was shut down, killed or crashed); "
                 "nothing half-written was kept. Submit the job again.").to_dict()


def free_model_memory() -> None:
    """Give memory back between heavy jobs, so one job's tensors never crowd out the next."""
    gc.collect()
    release_cached_memory()


class _ProgressReporter:
    """Turns a kind's per-stage (done, total, stage) calls into overall progress + ETA in the store,
    at most every PROGRESS_WRITE_INTERVAL_S, and raises CANCELLED once a cancel was asked for.

    A stage counts with its weight among the kind's `stages`; a part of one ("train: body") counts
    as that stage. A once-per-machine setup stage (names.SETUP_STAGES) leaves the overall progress
    where it was. Any other stage name is a bug in the kind: with EDN_STRICT_STAGES=1 (the tests)
    it raises; otherwise it is logged once and its own fraction is shown as the overall progress."""

    def __init__(self, store: JobStore, job_id: str, kind: JobKind, stop: threading.Event):
        self._store, self._job_id, self._kind, self._stop = store, job_id, kind, stop
        weights = dict(kind.stages)
        total = sum(weights.values()) or 1.0
        self._before: dict[str, float] = {}
        acc = 0.0
        for name, weight in kind.stages:
            self._before[name] = acc / total
            acc += weight
        self._weight = {name: weight / total for name, weight in weights.items()}
        self._started = time.monotonic()
        self._last_write = 0.0
        self._last_stage: str | None = None
        self._overall = 0.0
        self._stage_clock: tuple[str, float, float] | None = None  # (stage, when it first reported, its fraction then)

    def __call__(self, done: int, total: int, stage: str, eta_s: float | None = None) -> None:
        """`eta_s`: the seconds left as the kind knows them; without it, extrapolated from progress."""
        if self._stop.is_set():
            raise EdnError(CANCELLED, CANCELLED_ERROR["message"])
        fraction = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
        weighted = stage if stage in self._weight else stage_family(stage)
        if weighted in self._weight:
            self._overall = self._before[weighted] + self._weight[weighted] * fraction
        elif stage not in SETUP_STAGES:
            if self._weight:
                self._unknown_stage(stage)
            self._overall = fraction
        now = time.monotonic()
        if stage == self._last_stage and now - self._last_write < PROGRESS_WRITE_INTERVAL_S and done < total:
            return
        overall, elapsed = self._overall, now - self._started
        eta = eta_s if eta_s is not None else self._estimate(weighted, fraction, now)
        if eta is None and overall > 0.01 and elapsed > 0.5:
            eta = elapsed * (1.0 - overall) / overall
        try:
            self._store.set_progress(self._job_id, round(overall, 4), stage, None if eta is None else round(eta, 1))
        except Exception as exc:  # progress is for show: a full or locked store must not fail the job
            log.warning("job %s: progress not recorded (%s)", self._job_id, exc)
        self._last_write, self._last_stage = now, stage

    def _estimate(self, stage: str, fraction: float, now: float) -> float | None:
        """The time left from the current stage's own pace over its frames or steps (detection and generation
        run at very different rates, so the job's average misleads), plus the later stages' share at the
        job's pace so far. None until the stage has a pace."""
        if self._stage_clock is None or self._stage_clock[0] != stage:
            self._stage_clock = (stage, now, fraction)
            return None
        _, since, start_fraction = self._stage_clock
        if stage not in self._weight or fraction - start_fraction < 0.02 or now - since < 0.5:
            return None
        stage_left = (now - since) * (1.0 - fraction) / (fraction - start_fraction)
        later = 1.0 - self._before[stage] - self._weight[stage]
        elapsed = now - self._started
        return stage_left + (later * elapsed / self._overall if later > 1e-6 and self._overall > 0.01 else 0.0)

    def _unknown_stage(self, stage: str) -> None:
        message = (f"job kind {self._kind.name!r} reported stage {stage!r}, which is not among its stages "
                   f"({', '.join(self._weight)}); add it to the kind's `stages`")
        if os.environ.get(STRICT_STAGES_ENV) == "1":
            raise LookupError(message)
        if (self._kind.name, stage) not in _unknown_stages_logged:
            _unknown_stages_logged.add((self._kind.name, stage))
            log.warning("%s; its own fraction is shown as the job's progress", message)


class Scheduler:
    def __init__(self, store: JobStore, kinds: JobKinds, data_dir: Path, light_workers: int = 2):
        self.store, self.kinds, self.data_dir = store, kinds, Path(data_dir)
        self.light_workers = light_workers
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._running: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        # Outcomes the job table refused to store (full disk, locked database): written as soon as it takes them.
        self._unrecorded: dict[str, tuple[str, dict | None, dict | None]] = {}

    def start(self) -> dict[str, int]:
        stopped = self.store.list_jobs((js.RUNNING,), limit=1_000_000)
        recovered = self.store.recover(INTERRUPTED_ERROR, CANCELLED_ERROR)
        if any(recovered.values()):
            log.warning("after a restart: %s", ", ".join(f"{n} job(s) now {state}" for state, n in recovered.items() if n))
        for job in stopped:  # their half-written files, in the job's folder and in an output folder it named
            own = self.data_dir / "jobs" / job["id"]
            for folder in {own, Path((job["params"] or {}).get("output_dir") or own)}:
                for removed in remove_partials(folder):
                    log.warning("removed %s, half-written by job %s when the server stopped", removed, job["id"])
        workers = [("heavy", True)] + [(f"light-{i}", False) for i in range(self.light_workers)]
        for name, heavy in workers:
            thread = threading.Thread(target=self._work, args=(heavy,), name=f"edn-worker-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return recovered

    def notify(self) -> None:
        """A job was queued: wake the workers instead of letting them wait for their next poll."""
        with self._wake:
            self._wake.notify_all()

    def cancel(self, job_id: str) -> str | None:
        state = self.store.request_cancel(job_id, CANCELLED_ERROR)
        if state == js.RUNNING:
            with self._lock:
                event = self._running.get(job_id)
            if event is not None:
                event.set()
        return state

    def problems(self) -> list[str]:
        """What keeps jobs from running or finishing, in words; empty when every worker is well."""
        found = [f"worker {t.name} is not running" for t in self._threads if not t.is_alive() and not self._stopping.is_set()]
        with self._lock:
            waiting = len(self._unrecorded)
        if waiting:
            found.append(f"{waiting} finished job(s) could not be recorded (is the data dir's disk full?); retrying")
        return found

    def stop(self, timeout: float = 5.0) -> None:
        """Ask running jobs to stop and wait a little; what does not stop in time is recovered on next start."""
        self._stopping.set()
        with self._lock:
            for event in self._running.values():
                event.set()
        self.notify()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- workers ---------------------------------------------------------------------------------

    def _work(self, heavy: bool) -> None:
        while not self._stopping.is_set():
            job = None
            try:  # a locked or broken database must not kill the worker
                if self._record_unrecorded():
                    job = self.store.claim_next(heavy)
            except Exception:
                log.exception("could not read the job queue")
            if job is None:
                with self._wake:
                    self._wake.wait(IDLE_POLL_S)
                continue
            try:
                self._run(job)
            except Exception:  # whatever went wrong around the job, the worker lives on
                log.exception("job %s (%s): the worker hit an unexpected error", job["id"], job["kind"])
                self._record(job["id"], js.FAILED, None, EdnError(
                    INTERNAL, "The server hit an unexpected error around this job. This is a bug in edn: please report "
                              "it with the server's log, and submit the job again.").to_dict())
            finally:
                if heavy:
                    free_model_memory()

    def _record(self, job_id: str, state: str, result: dict | None, error: dict | None) -> None:
        """Store a job's outcome, retrying briefly; one the store keeps refusing is kept and retried later."""
        for delay in (*RECORD_RETRY_S, None):
            try:
                self.store.finish(job_id, state, result=result, error=error)
                return
            except Exception as exc:  # sqlite3.OperationalError: "database or disk is full", "database is locked"
                if delay is None:
                    log.error("could not record job %s as %s (%s); retrying while the workers wait", job_id, state, exc)
                    with self._lock:
                        self._unrecorded[job_id] = (state, result, error)
                    return
                time.sleep(delay)

    def _record_unrecorded(self) -> bool:
        """Write the outcomes kept by _record; True when none is left (new jobs may be claimed)."""
        with self._lock:
            pending = list(self._unrecorded.items())
        for job_id, (state, result, error) in pending:
            self.store.finish(job_id, state, result=result, error=error)
            with self._lock:
                self._unrecorded.pop(job_id, None)
            log.warning("job %s recorded as %s after the store accepted writes again", job_id, state)
        return True

    def _run(self, job: dict) -> None:
        job_id = job["id"]
        stop = threading.Event()
        if job["cancel_requested"] or self._stopping.is_set():
            stop.set()
        with self._lock:
            self._running[job_id] = stop
        started = time.monotonic()
        try:
            state, result, error = self._execute(job, stop)
        finally:
            with self._lock:
                self._running.pop(job_id, None)
        if state == js.CANCELLED and self._stopping.is_set() and not self.store.get(job_id)["cancel_requested"]:
            state, error = (js.QUEUED, None) if job["resumable"] else (js.INTERRUPTED, INTERRUPTED_ERROR)
        self._record(job_id, state, result, error)
        log.info("job %s (%s) %s after %.1f s", job_id, job["kind"], state, time.monotonic() - started)

    def _execute(self, job: dict, stop: threading.Event) -> tuple[str, dict | None, dict | None]:
        kind = self.kinds.get(job["kind"])
        if kind is None:
            return js.FAILED, None, EdnError(NOT_IMPLEMENTED, f"This server has no job kind '{job['kind']}' (it was "
                                                              "submitted to a server with a plug-in that is not loaded now). "
                                                              "Submit it again to a server that has it.").to_dict()
        work_dir = self.data_dir / "jobs" / job["id"]
        try:
            if stop.is_set():
                raise EdnError(CANCELLED, CANCELLED_ERROR["message"])
            work_dir.mkdir(parents=True, exist_ok=True)
            ctx = JobContext(
                job_id=job["id"], params=kind.params.model_validate(job["params"]),
                media=media_from_stored(job["input"].get("media")) if kind.needs_media else None,
                work_dir=work_dir, data_dir=self.data_dir, attempt=job["attempts"],
                progress=_ProgressReporter(self.store, job["id"], kind, stop), cancelled=stop.is_set,
            )
            result = kind.run(ctx)
            return js.DONE, result, None
        except EdnError as exc:
            if exc.code == CANCELLED:
                return js.CANCELLED, None, CANCELLED_ERROR
            return js.FAILED, None, exc.to_dict()
        except ValidationError as exc:  # checked at submit; since then e.g. the output folder became read-only
            field, message = field_of(exc, "params")
            return js.FAILED, None, EdnError(BAD_PARAMS, f"Parameter {field} is no longer valid: {message}.").to_dict()
        except OSError as exc:
            if exc.errno not in DISK_ERRNOS:
                return self._unexpected(job, exc)
            log.warning("job %s (%s) could not write: %s", job["id"], job["kind"], exc)
            return js.FAILED, None, disk_error(exc).to_dict()
        except BaseException as exc:
            if is_out_of_memory(exc):
                return js.FAILED, None, EdnError(
                    OUT_OF_MEMORY, f"The job ran out of memory ({type(exc).__name__}). Use a smaller resolution or "
                                   "quality preset, or close other programs using the GPU, and submit it again.").to_dict()
            if not isinstance(exc, Exception):
                raise
            return self._unexpected(job, exc)

    def _unexpected(self, job: dict, exc: Exception) -> tuple[str, None, dict]:
        log.exception("job %s (%s) failed unexpectedly", job["id"], job["kind"], exc_info=exc)
        return js.FAILED, None, EdnError(
            INTERNAL, f"The job failed with an unexpected error ({type(exc).__name__}: {exc}). "
                      "This is a bug in edn: please report it with the server's log.").to_dict()
