"""`edn report`: one HTML file about a real (tiny, briefly trained) target model that opens offline
and shows its curves, samples, metrics and normalization statistics."""
from __future__ import annotations

import base64
import json
import re
import shutil

import pytest
from conftest import shared_clip
from edn_server.cli import main
from edn_server.errors import BAD_PARAMS, MODEL_NOT_FOUND, EdnError
from edn_server.gan.evaluate import evaluate
from edn_server.gan.train import train
from edn_server.model_report import build_report

CLIP = "edn_subject4_train.mp4"
FRAMES = 24
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model(pose_model_full):
    return train(shared_clip(CLIP), "report-tiny", preset="tiny", steps=4, end=FRAMES)


@pytest.fixture(scope="module")
def metrics_file(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("metrics") / "metrics.json"
    evaluate(model.name, shared_clip(CLIP), out, start=FRAMES, end=FRAMES + 4, baseline="median")
    return out


def embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_report_is_one_offline_file_with_curves_samples_metrics_and_stats(model, metrics_file, tmp_path):
    out = build_report(model.name, tmp_path / "report.html", metrics=metrics_file)
    page = out.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # nothing beside it: one file to send
    # self-contained: nothing fetched from anywhere, no scripts
    assert not re.search(r'(?:src|href)\s*=\s*["\']?\s*(?:https?:|//)', page, re.I)
    assert "<script" not in page.lower() and "<link" not in page.lower()
    pngs = embedded_pngs(page)
    assert len(pngs) == 3 and all(p.startswith(PNG_MAGIC) for p in pngs)  # loss curves, sample grid, stats picture
    assert (model.folder / "samples.png").read_bytes() in pngs and (model.folder / "losses.png").read_bytes() in pngs
    assert "Only the final grid exists" in page  # training keeps only the latest samples.png
    # what the model is
    width, height = model.resolution  # 88 x 88: the tiny preset's person window (128 x 64 full-frame)
    assert "report-tiny" in page and "tiny" in page and f"{width} x {height}" in page
    # the target's normalization statistics, as numbers
    stats = json.loads((model.folder / "model.json").read_text())["stats"]
    for key in ("ankle_far_y", "ankle_close_y", "height_far", "height_close", "standing_height"):
        assert f"{stats[key]:.1f}" in page, key
    assert "1024 x 512" in page and f">{FRAMES}<" in page
    # the evaluation, model beside the median baseline
    metrics = json.loads(metrics_file.read_text())
    assert "Body SSIM" in page and "median baseline" in page
    assert f"{metrics['body_ssim']:.4g}" in page and f"{metrics['baseline']['body_ssim']:.4g}" in page


def test_curves_are_replotted_from_the_history_when_the_picture_is_gone(model, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(model.folder, folder)
    (folder / "losses.png").unlink()
    page = build_report(folder, tmp_path / "r.html").read_text()
    assert "Re-plotted from losses.json" in page
    assert len(embedded_pngs(page)) == 3
    assert "No evaluation metrics" in page and "edn eval" in page  # says how to get them


def test_the_cli_writes_the_report_and_bad_input_leaves_no_file(model, metrics_file, tmp_path, capsys):
    assert main(["report", "--model", model.name, "-o", str(tmp_path / "cli.html"), "--metrics", str(metrics_file)]) == 0
    assert (tmp_path / "cli.html").is_file() and "wrote" in capsys.readouterr().out

    with pytest.raises(EdnError) as error:
        build_report(model.name, tmp_path / "a.html", metrics=tmp_path / "missing.json")
    assert error.value.code == BAD_PARAMS and "missing.json" in error.value.message and "edn eval" in error.value.message
    with pytest.raises(EdnError) as error:
        build_report("no such model", tmp_path / "b.html")
    assert error.value.code == MODEL_NOT_FOUND
    assert main(["report", "--model", model.name, "-o", str(tmp_path / "c.html"), "--metrics", str(tmp_path / "nope.json")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.html"]
