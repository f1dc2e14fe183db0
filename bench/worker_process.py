"""One measurement in a fresh process (its own peak memory, thread count and caches), shared by the
benches that compare variants: the worker prints its result as JSON on its last stdout line."""
from __future__ import annotations

import json
import subprocess
import sys
import time


def run_worker(command: list[str], env: dict[str, str] | None = None) -> dict:
    """The worker's JSON row plus its wall_s; on failure the tail of its stderr is printed and
    SystemExit carries its return code."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(done.returncode)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["wall_s"] = time.perf_counter() - started
    return row
