"""The vocabulary in use: job progress counts a stage by its name (a stage a kind does not declare is a
bug the tests catch), bars say what they count, and the CLI spells the normalization switch one way."""
from __future__ import annotations

import logging
import threading

import pytest
from edn_server.cli import build_parser
from edn_server.names import DOWNLOAD_STAGE, TRAIN_STAGE, frame_name, stage_unit, sub_stage
from edn_server.service.job_contract import JobKind
from edn_server.service.job_table import JobStore
from edn_server.service.workers import STRICT_STAGES_ENV, _ProgressReporter
from pydantic import BaseModel

KIND = JobKind(name="two_stages", params=BaseModel, run=lambda ctx: {}, stages=(("detect poses", 0.25), (TRAIN_STAGE, 0.75)))


@pytest.fixture
def job(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    job_id = store.insert(KIND.name, {}, {}, heavy=False, resumable=False)
    assert store.claim_next(heavy=False)["id"] == job_id  # progress is kept for running jobs
    return store, job_id, _ProgressReporter(store, job_id, KIND, threading.Event())


def test_a_part_of_a_stage_counts_as_that_stage(job):
    store, job_id, report = job
    report(1, 2, sub_stage(TRAIN_STAGE, "face"))
    assert store.get(job_id)["progress"] == pytest.approx(0.25 + 0.75 / 2)
    assert store.get(job_id)["stage"] == "train: face"


def test_fetching_the_pose_model_leaves_the_progress_where_it_was(job):
    store, job_id, report = job
    report(4, 4, "detect poses")
    report(10, 100, DOWNLOAD_STAGE)
    assert store.get(job_id)["progress"] == pytest.approx(0.25) and store.get(job_id)["stage"] == DOWNLOAD_STAGE


def test_an_undeclared_stage_fails_under_test_and_is_logged_once_in_production(job, monkeypatch, caplog):
    store, job_id, report = job
    with pytest.raises(LookupError, match="'smoothing'"):
        report(1, 2, "smoothing")
    monkeypatch.setenv(STRICT_STAGES_ENV, "0")
    with caplog.at_level(logging.WARNING, logger="edn.scheduler"):
        report(1, 2, "smoothing")
        report(2, 2, "smoothing")
    assert store.get(job_id)["progress"] == 1.0  # its own fraction, as before
    assert sum("'smoothing'" in record.getMessage() for record in caplog.records) == 1


def test_bars_name_what_they_count():
    assert frame_name(7) == "000007.png"
    assert stage_unit("detect poses") == "frame" and stage_unit("generate frames") == "frame"
    assert stage_unit(sub_stage(TRAIN_STAGE, "body")) == "step" and stage_unit(DOWNLOAD_STAGE) == "B"


@pytest.mark.parametrize("spelling", ["--no-normalize", "--no-auto"])
def test_every_command_with_normalization_spells_the_switch_no_normalize(spelling):
    parser = build_parser()
    transfer = parser.parse_args(["transfer", "src.mp4", "--model", "m", "-o", "out", spelling])
    normalize = parser.parse_args(["pose", "normalize", "src.npz", "--target", "t.npz", "-o", "o.npz", spelling])
    assert transfer.no_normalize and normalize.no_normalize


def test_the_old_spelling_is_hidden_from_help(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["pose", "normalize", "--help"])
    shown = capsys.readouterr().out
    assert "--no-normalize" in shown and "--no-auto" not in shown


def test_the_eta_follows_the_current_stages_own_pace(job, monkeypatch):
    """A minute of setup, then detection at 5 frames/s: the stage's time left comes from its own pace over
    its frames (the job's average would count the setup minute into every frame); the training stage after
    it, whose pace is not known yet, at the job's pace so far."""
    from edn_server.service import workers

    store, job_id, report = job
    clock = [60.0]
    monkeypatch.setattr(workers.time, "monotonic", lambda: clock[0])
    report._started = 0.0
    report(0, 100, "detect poses")
    clock[0] = 70.0
    report(50, 100, "detect poses")
    overall = 0.25 * 0.5
    assert store.get(job_id)["eta_s"] == pytest.approx(10.0 + 0.75 * 70.0 / overall, abs=0.1)
    report_only_detection = workers._ProgressReporter(store, job_id, JobKind(
        name="detect", params=BaseModel, run=lambda ctx: {}, stages=(("detect poses", 1.0),)), threading.Event())
    report_only_detection._started = 0.0
    report_only_detection(0, 100, "detect poses")
    clock[0] = 80.0
    report_only_detection(50, 100, "detect poses")
    assert store.get(job_id)["eta_s"] == pytest.approx(10.0, abs=0.1)  # the job's average would say 80 s
