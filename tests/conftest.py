"""Shared fixtures: real clips from ../shared/data, the pose model, and the project's own samples."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDN_SHARED_DATA", ROOT.parent / "shared" / "data"))
SHARED_MODELS = Path(os.environ.get("EDN_SHARED_MODELS", ROOT.parent / "shared" / "models"))
# A stage name a job kind does not declare fails the job under test (servers started by the tests inherit it).
os.environ.setdefault("EDN_STRICT_STAGES", "1")


def shared_clip(name: str) -> Path:
    """A real clip from ../shared/data, or a skip saying why it is missing."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"real clip {name} not found in {SHARED_DATA} (set EDN_SHARED_DATA to the folder holding it)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _isolated_data_home(tmp_path_factory):
    """Jobs and pose caches go to a temporary EDN_HOME; the user cache (models, samples) is kept,
    since building those is slow and they are shared by design."""
    old = os.environ.get("EDN_HOME")
    os.environ["EDN_HOME"] = str(tmp_path_factory.mktemp("edn_home"))
    yield
    if old is None:
        os.environ.pop("EDN_HOME", None)
    else:
        os.environ["EDN_HOME"] = old


@pytest.fixture(scope="session")
def pose_model_full() -> Path:
    from edn_server.pose.models import ensure_pose_model

    return ensure_pose_model("full", from_dir=SHARED_MODELS if SHARED_MODELS.is_dir() else None)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """The test networks are tiny: they gain nothing from threads, and on a shared 2-core CPU spinning
    OpenMP threads cost several times the time. Applies to modules that imported torch."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- one real job server per test module (tests/server); a module needing other options defines its own `server`

@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    from api_helpers import ServerProcess

    srv = ServerProcess(tmp_path_factory.mktemp(request.module.__name__.removeprefix("test_")) / "data")
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    c = server.client()
    yield c
    c.close()


@pytest.fixture(scope="module")
def lite_model():
    from edn_server.pose.models import ensure_pose_model

    return ensure_pose_model("lite", from_dir=SHARED_MODELS if SHARED_MODELS.is_dir() else None,
                             allow_download=False, allow_build=False)
