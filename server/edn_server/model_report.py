"""`edn report`: one self-contained HTML page about a trained target, readable offline and easy to
send around: what it is (preset, resolution, configuration), how training went (loss curves,
sample grids), how well it does (evaluation metrics) and the target statistics the source's
motion is normalized to. Pictures are embedded as base64 PNG data URIs; no scripts, no links out."""
from __future__ import annotations

import base64
import datetime
import html
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import atomic_file
from .config import data_dir
from .errors import BAD_MODEL, BAD_PARAMS, OUTPUT_UNWRITABLE, EdnError
from .names import LOSSES_FILE, LOSSES_JSON, METRICS_FILE, SAMPLES_FILE
from .registry import find_model, read_model_info

LOSSES_PNG = LOSSES_FILE
SAMPLES_GLOB = SAMPLES_FILE.replace(".png", "*.png")  # plus any numbered grids a run keeps
METRIC_ROWS = (("body_ssim", "Body SSIM", "higher is better"), ("body_psnr", "Body PSNR (dB)", "higher is better"),
               ("person_ssim", "Person SSIM (inside the real person's mask)", "higher is better"),
               ("face_ssim", "Face SSIM", "higher is better"), ("pose_distance", "Pose distance (px)", "lower is better"),
               ("missed_detections", "Missed detections", "frames, lower is better"), ("lpips", "LPIPS", "lower is better"))
STATS_ROWS = (("frame_size", "Frame size (w x h)", "px"), ("ankle_far_y", "Far ankle line y", "px"),
              ("ankle_close_y", "Close ankle line y", "px"), ("height_far", "Height at the far line", "px"),
              ("height_close", "Height at the close line", "px"), ("ankle_y", "Median floor y", "px"),
              ("hip_x", "Median hip x", "px"), ("standing_height", "Standing height", "px"),
              ("frames_used", "Frames used", "frames"))
STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f0f0f0}td.n{text-align:right;font-family:monospace}img{max-width:100%;border:1px solid #ddd}
.note{color:#666;font-size:.9em}pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.8em}"""


@dataclass(frozen=True)
class ReportSources:
    """Everything the page is made from, read up front so a bad input fails before anything is written."""

    folder: Path
    meta: dict[str, Any]
    losses: list[dict[str, Any]] | None
    samples: list[Path]
    metrics: dict[str, Any] | None
    metrics_path: Path | None


def _read_json(path: Path, what: str, fix: str, code: str = BAD_PARAMS) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as error:
        raise EdnError(code, f"The {what} {path} cannot be read ({error.strerror or error}); {fix}") from None
    except ValueError as error:
        raise EdnError(code, f"The {what} {path} is not valid JSON ({error}); {fix}") from None


def gather(model: str | os.PathLike, metrics: str | os.PathLike | None = None) -> ReportSources:
    folder = find_model(data_dir(), model)
    meta = read_model_info(folder, complete=False)
    losses = None
    if (folder / LOSSES_JSON).is_file():
        losses = _read_json(folder / LOSSES_JSON, "loss history", "delete it to report without curves.", BAD_MODEL)
    metrics_path = Path(metrics) if metrics is not None else folder / METRICS_FILE
    metrics_data = None
    if metrics is not None and not metrics_path.is_file():
        raise EdnError(BAD_PARAMS, f"--metrics {metrics_path} does not exist; write it with `edn eval --model "
                                   f"{meta.get('name', folder.name)!r} --video CLIP -o {metrics_path}`, or leave --metrics out.")
    if metrics_path.is_file():
        metrics_data = _read_json(metrics_path, "metrics file", "write it again with `edn eval`.")
        if not isinstance(metrics_data, dict):
            raise EdnError(BAD_PARAMS, f"The metrics file {metrics_path} holds no metrics object; write it again with `edn eval`.")
    samples = sorted(folder.glob(SAMPLES_GLOB), key=lambda p: (p.stat().st_mtime, p.name))
    return ReportSources(folder, meta, losses if isinstance(losses, list) else None, samples, metrics_data,
                         metrics_path if metrics_data is not None else None)


# -- HTML pieces -------------------------------------------------------------------------------------

def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "n/a" if value is None else ("yes" if value else "no")
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}" if abs(value) < 10 else f"{value:.1f}"
    if isinstance(value, list | tuple):
        return " x ".join(_number(v) for v in value)
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="n">{_e(_number(c))}</td>' if not isinstance(c, str) else f"<td>{_e(c)}</td>"
                                    for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _face_stage(meta: dict) -> str:
    """Trained or not, and whether transfers use it (the held-out face check, gan/face_check.py)."""
    trained = (meta.get("training") or {}).get("face_stage", meta.get("face_side") is not None)
    face = meta.get("face")
    if not trained or not isinstance(face, dict):
        return "trained, used" if trained else "none"
    return f"trained, {'used' if face.get('used') else 'not used'}: {face.get('reason', '')}"


def _overview(src: ReportSources) -> str:
    meta = src.meta
    training = meta.get("training") or {}
    target = meta.get("target") or {}
    dataset = meta.get("dataset") or {}
    rows = [["Preset", str(meta.get("preset", "?"))], ["Resolution (w x h)", meta.get("resolution")],
            ["Steps", meta.get("steps")], ["Training time (s)", training.get("seconds")],
            ["Device", str(training.get("device", "?"))], ["Face stage", _face_stage(meta)],
            ["Target video", f"{target.get('video', '?')} (frames {target.get('start', '?')}-{target.get('end', '?')})"],
            ["Frames trained on", f"{dataset.get('train_frames', '?')} of {dataset.get('frames', '?')} in the dataset"],
            ["Created", str(meta.get("created", "?"))], ["edn version", str(meta.get("edn_version", "?"))],
            ["Model folder", str(src.folder)]]
    final = (meta.get("metrics") or {}).get("final_losses") or {}
    out = _table(["", ""], rows)
    if final:
        out += "<h3>Final losses</h3>" + _table(["term", "value"], [[k, v] for k, v in final.items()])
    return out


def _curves(src: ReportSources) -> str:
    from .model_report_plots import loss_curves_png

    if (src.folder / LOSSES_PNG).is_file():
        return _img((src.folder / LOSSES_PNG).read_bytes(), "training loss curves")
    if src.losses:
        return _img(loss_curves_png(src.losses), "training loss curves") + \
            f'<p class="note">Re-plotted from {_e(LOSSES_JSON)} ({_e(LOSSES_PNG)} is missing).</p>'
    return '<p class="note">No loss history in the model folder (losses.json and losses.png are both missing).</p>'


def _samples(src: ReportSources) -> str:
    if not src.samples:
        return '<p class="note">No sample grids in the model folder (the preset may set sample_count to 0).</p>'
    out = '<p class="note">Each row: label image | generated frame | real frame, for fixed frames of the target clip.</p>'
    if len(src.samples) == 1:
        out += (f'<p class="note">Only the final grid exists: training overwrites {_e(src.samples[0].name)} at each '
                f'report, so this is the model after {_e(src.meta.get("steps", "?"))} steps.</p>')
    for path in src.samples:
        stamp = datetime.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M:%S")
        out += f"<h3>{_e(path.name)} <span class='note'>({stamp})</span></h3>" + _img(path.read_bytes(), path.name)
    return out


def _metrics(src: ReportSources) -> str:
    name = src.meta.get("name", src.folder.name)
    if src.metrics is None:
        return (f'<p class="note">No evaluation metrics: run <code>edn eval --model "{_e(name)}" --video CLIP -o metrics.json'
                f'</code> and pass <code>--metrics metrics.json</code> (or save it as {_e(src.folder / METRICS_FILE)}).</p>')
    m = src.metrics
    baseline = m.get("baseline") if isinstance(m.get("baseline"), dict) else None
    header = ["metric", "model"] + (["median baseline"] if baseline else []) + ["note"]
    rows = [[label, m.get(key)] + ([baseline.get(key)] if baseline else []) + [note]
            for key, label, note in METRIC_ROWS if key in m]
    out = _table(header, rows)
    out += (f'<p class="note">From {_e(src.metrics_path)}: clip {_e(m.get("video", "?"))}, frames {_e(m.get("range", "?"))}, '
            f'{_e(m.get("frames_with_pose", "?"))} of {_e(m.get("frames", "?"))} frames with a pose.')
    if m.get("lpips") is None and m.get("lpips_unavailable_reason"):
        out += f" LPIPS: {_e(m['lpips_unavailable_reason'])}."
    return out + "</p>"


def _stats(src: ReportSources) -> str:
    from .model_report_plots import stats_png

    stats = src.meta.get("stats")
    if not isinstance(stats, dict) or "frame_size" not in stats:
        return '<p class="note">model.json carries no target statistics; train the model again.</p>'
    rows = [[label, stats[key], unit] for key, label, unit in STATS_ROWS if key in stats]
    far, close = stats.get("ankle_far_y"), stats.get("ankle_close_y")
    if isinstance(far, int | float) and isinstance(close, int | float):
        rows.append(["Ankle range (close - far)", float(close) - float(far), "px"])
    note = ('<p class="note">A source dancer\'s feet are mapped onto the band between the far and close ankle lines, '
            "and their size to the target's height at that depth (the paper's global pose normalization).</p>")
    try:
        picture = _img(stats_png(stats), "target statistics on the target frame")
    except (KeyError, TypeError, ValueError) as error:
        picture = f'<p class="note">The statistics could not be drawn ({_e(error)}).</p>'
    return _table(["statistic", "value", "unit"], rows) + note + picture


def render_html(src: ReportSources) -> str:
    name = src.meta.get("name", src.folder.name)
    config = src.meta.get("config") or {}
    sections = [("Model", _overview(src)), ("Training curves", _curves(src)), ("Sample grids", _samples(src)),
                ("Evaluation metrics", _metrics(src)), ("Target normalization statistics", _stats(src)),
                ("Configuration", f"<details><summary>model.json config</summary><pre>{_e(json.dumps(config, indent=1))}"
                                  "</pre></details>")]
    body = "".join(f"<h2>{_e(title)}</h2>{content}" for title, content in sections)
    made = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>edn model report: {_e(name)}</title>'
            f"<style>{STYLE}</style></head><body><h1>Trained target: {_e(name)}</h1>"
            f'<p class="note">Everybody Dance Now model report, made {made} by edn.</p>{body}</body></html>\n')


def build_report(model: str | os.PathLike, out: str | os.PathLike, metrics: str | os.PathLike | None = None) -> Path:
    """Write the report of `model` (a registered name or a model folder) to `out`; returns its path.
    Raises EdnError MODEL_NOT_FOUND / BAD_MODEL / BAD_PARAMS / OUTPUT_UNWRITABLE, leaving no file behind."""
    out = Path(out)
    if out.is_dir():
        raise EdnError(OUTPUT_UNWRITABLE, f"-o {out} is a folder; give a file name such as {out / 'report.html'}.")
    page = render_html(gather(model, metrics))
    try:
        with atomic_file(out, suffix=".html") as tmp:
            tmp.write_text(page, encoding="utf-8")
    except OSError as error:
        raise EdnError(OUTPUT_UNWRITABLE, f"The report {out} could not be written ({error.strerror or error}); "
                                          "choose a writable place with -o.") from None
    return out
