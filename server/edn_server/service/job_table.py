"""The durable job table: SQLite in WAL mode, so jobs survive a crash and readers never wait on writers."""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED = "queued", "running", "done", "failed", "cancelled", "interrupted"
STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED)
FINAL_STATES = (DONE, FAILED, CANCELLED, INTERRUPTED)

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    heavy INTEGER NOT NULL,
    resumable INTEGER NOT NULL,
    input TEXT NOT NULL,
    params TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    stage TEXT,
    eta_s REAL,
    result TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (state, heavy, seq);
"""
_JSON_COLUMNS = ("input", "params", "result", "error")


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JobStore:
    """Every job's state, progress and outcome. Safe to use from many threads: each thread gets its
    own connection (SQLite connections must not be shared), and WAL lets pollers read while a
    worker writes progress."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as db:
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode: a commit survives a process crash (kill -9); only a power loss can
            # drop the last few commits, which costs job progress, never consistency.
            db.execute("PRAGMA synchronous = NORMAL")
            self._local.db = db
        return db

    def _write(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        return self._connect().execute(sql, args)

    # -- submit and read ---------------------------------------------------------------------

    def insert(self, kind: str, input: dict, params: dict, heavy: bool, resumable: bool) -> str:
        job_id = uuid.uuid4().hex
        self._write(
            "INSERT INTO jobs (id, kind, state, heavy, resumable, input, params, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, kind, QUEUED, int(heavy), int(resumable), json.dumps(input), json.dumps(params), time.time()),
        )
        return job_id

    def get(self, job_id: str) -> dict | None:
        row = self._connect().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else self._public(row)

    def list_jobs(self, states: tuple[str, ...] = (), kind: str | None = None, limit: int = 100) -> list[dict]:
        where, args = [], []
        if states:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            args.extend(states)
        if kind:
            where.append("kind = ?")
            args.append(kind)
        sql = "SELECT * FROM jobs" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY seq DESC LIMIT ?"
        return [self._public(row) for row in self._connect().execute(sql, (*args, limit))]

    def counts(self) -> dict[str, int]:
        rows = self._connect().execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
        return {state: 0 for state in STATES} | {row["state"]: row["n"] for row in rows}

    def _public(self, row: sqlite3.Row) -> dict[str, Any]:
        job = dict(row)
        for column in _JSON_COLUMNS:
            job[column] = json.loads(job[column]) if job[column] is not None else None
        for column in ("created", "started", "finished"):
            job[column] = _iso(job[column])
        job["heavy"] = bool(job["heavy"])
        job["resumable"] = bool(job["resumable"])
        job["cancel_requested"] = bool(job["cancel_requested"])
        del job["seq"]
        return job

    # -- worker side --------------------------------------------------------------------------

    def claim_next(self, heavy: bool) -> dict | None:
        """Atomically move the oldest queued job of this class to running and return it."""
        row = self._write(
            "UPDATE jobs SET state = ?, started = ?, attempts = attempts + 1, progress = 0, eta_s = NULL "
            "WHERE seq = (SELECT seq FROM jobs WHERE state = ? AND heavy = ? ORDER BY seq LIMIT 1) RETURNING *",
            (RUNNING, time.time(), QUEUED, int(heavy)),
        ).fetchone()
        return None if row is None else self._public(row)

    def set_progress(self, job_id: str, progress: float, stage: str | None, eta_s: float | None) -> None:
        self._write("UPDATE jobs SET progress = ?, stage = ?, eta_s = ? WHERE id = ? AND state = ?",
                    (progress, stage, eta_s, job_id, RUNNING))

    def finish(self, job_id: str, state: str, result: dict | None = None, error: dict | None = None) -> None:
        """Record a running job's outcome; a done job's progress is 1 by definition."""
        assert state in FINAL_STATES or state == QUEUED
        progress_sql = ", progress = 1, eta_s = 0" if state == DONE else ", eta_s = NULL"
        finished = None if state == QUEUED else time.time()
        self._write(
            f"UPDATE jobs SET state = ?, result = ?, error = ?, finished = ?{progress_sql} WHERE id = ?",
            (state, json.dumps(result) if result is not None else None, json.dumps(error) if error is not None else None,
             finished, job_id),
        )

    def request_cancel(self, job_id: str, error: dict) -> str | None:
        """Cancel a queued job at once; flag a running one (its worker stops it). Returns the state after."""
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                db.execute("COMMIT")
                return None
            state = row["state"]
            if state == QUEUED:
                db.execute("UPDATE jobs SET state = ?, error = ?, finished = ?, cancel_requested = 1 WHERE id = ?",
                           (CANCELLED, json.dumps(error), time.time(), job_id))
                state = CANCELLED
            elif state == RUNNING:
                db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            db.execute("COMMIT")
            return state
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def delete(self, job_id: str) -> str | None:
        """Forget an ended job; returns its state (None if unknown). A queued or running job is kept
        and its state returned, so the caller can say why."""
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is not None and row["state"] in FINAL_STATES:
                db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            db.execute("COMMIT")
            return None if row is None else row["state"]
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def recover(self, interrupted_error: dict, cancelled_error: dict) -> dict[str, int]:
        """After a crash: running jobs become `interrupted`, or `queued` again when their kind can
        resume from its checkpoints; a running job whose cancel was asked for ends `cancelled`."""
        now = time.time()
        counts = {}
        counts[CANCELLED] = self._write(
            "UPDATE jobs SET state = ?, error = ?, finished = ?, eta_s = NULL WHERE state = ? AND cancel_requested = 1",
            (CANCELLED, json.dumps(cancelled_error), now, RUNNING)).rowcount
        counts[QUEUED] = self._write(
            "UPDATE jobs SET state = ?, stage = 'waiting to resume', eta_s = NULL WHERE state = ? AND resumable = 1",
            (QUEUED, RUNNING)).rowcount
        counts[INTERRUPTED] = self._write(
            "UPDATE jobs SET state = ?, error = ?, finished = ?, eta_s = NULL WHERE state = ?",
            (INTERRUPTED, json.dumps(interrupted_error), now, RUNNING)).rowcount
        return counts

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
