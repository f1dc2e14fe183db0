"""A real `edn serve` process for tests and benchmarks, and a tiny stdlib HTTP client for it."""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
FINAL = ("done", "failed", "cancelled", "interrupted")


class Client:
    """One keep-alive connection (not thread-safe: one Client per thread)."""

    def __init__(self, url: str, token: str | None, host_header: str | None = None, timeout: float = 30.0):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.token, self.host_header, self.timeout = token, host_header, timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None, json_body=None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.host_header is not None:
            headers["Host"] = self.host_header
        for attempt in (0, 1):  # a keep-alive connection the server closed: reconnect once
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                data = response.read()
                result = response.status, {k.lower(): v for k, v in response.getheaders()}, data
                if response.will_close:
                    self.close()
                return result
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, json_body=None, **kw) -> tuple[int, dict]:
        status, _, data = self.request(method, path, json_body=json_body, **kw)
        return status, json.loads(data) if data else {}

    def submit(self, kind: str, params: dict | None = None, media: dict | None = None) -> str:
        body = {"kind": kind, "params": params or {}}
        if media is not None:
            body["input"] = {"media": media}
        status, reply = self.json("POST", "/v1/jobs", body)
        assert status == 202, (status, reply)
        assert reply["state"] == "queued"
        return reply["id"]

    def job(self, job_id: str) -> dict:
        status, reply = self.json("GET", f"/v1/jobs/{job_id}")
        assert status == 200, (status, reply)
        return reply

    def wait(self, job_id: str, states=FINAL, timeout: float = 120.0, every: float = 0.05) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["state"] in states:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s: {job}")
            time.sleep(every)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class ServerProcess:
    """`python -m edn_server serve --port 0` on a data dir, found through its server.json."""

    def __init__(self, data_dir: Path, *args: str, test_kinds: bool = True, timeout: float = 60.0):
        self.data_dir = Path(data_dir)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server-{time.monotonic_ns()}.log"
        env = dict(os.environ)
        if test_kinds:
            env["EDN_JOB_KIND_MODULES"] = "edn_test_job_kinds"
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "edn_server", "serve", "--port", "0", "--data-dir", str(data_dir),
                                      "--log-level", "warning", *args], stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.info = self._wait_for_discovery(timeout)
        self.url = self.info["url"]
        self.token = Path(self.info["token_file"]).read_text().strip()

    def _wait_for_discovery(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                info = json.loads((self.data_dir / "server.json").read_text())
                if info.get("pid") == self.proc.pid:
                    return info
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"server did not start within {timeout} s:\n{self.log()}")

    def client(self, token: str | None = "valid", **kw) -> Client:
        return Client(self.url, self.token if token == "valid" else token, **kw)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, as a user's Ctrl-C or a service manager would; uvicorn re-raises it after a clean
        shutdown, so a clean exit reads -SIGTERM."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
