"""Making the files `make demo` ships (a maintainer's tool, run rarely; see shipped/COMMAND.md).

    python -m edn_server.demo.ship clips            # the cached sample renders, re-encoded to H.264
    python -m edn_server.demo.ship model NAME       # a model trained by `edn train`: the files loading needs

Each step copies its files into shipped/ and records their sha256 sums and the edn git commit in
shipped/MANIFEST.json (shipped.py checks them before use). The clips are re-encoded by Blender (bpy in
this Python, as the sample renderer uses): OpenCV's wheels have no H.264 encoder, and H.264 keeps the
clips small enough to commit.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..atomic import atomic_file
from .shipped import CLIP_FILES, MANIFEST, MODEL_DIR, MODEL_FILES, SHIPPED_DIR, file_sha256


def git_commit() -> str:
    """The edn commit these files were made with (and whether the checkout had local changes)."""
    root = Path(__file__).resolve().parents[3]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def _update_manifest(section: str, entry: dict) -> None:
    path = SHIPPED_DIR / MANIFEST
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    manifest[section] = entry
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")


def encode_h264(source: Path, out: Path, fps: float, size: tuple[int, int]) -> None:
    """Re-encode a movie with Blender's FFmpeg (H.264, high quality, colours untouched). Runs in a child
    process that imports bpy: this process keeps its own numpy and OpenCV."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    editor = scene.sequence_editor_create()
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences
    strip = strips.new_movie("clip", str(source), channel=1, frame_start=1)
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.fps, scene.render.fps_base = round(fps), round(fps) / fps
    scene.frame_start, scene.frame_end = 1, strip.frame_final_duration
    scene.view_settings.view_transform = "Standard"  # the default view transform would change the colours
    scene.view_settings.look = "None"
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):  # Blender 5.x
        settings.media_type = "VIDEO"
    settings.file_format = "FFMPEG"
    scene.render.ffmpeg.format = "MPEG4"
    scene.render.ffmpeg.codec = "H264"
    scene.render.ffmpeg.constant_rate_factor = "HIGH"
    scene.render.ffmpeg.ffmpeg_preset = "BEST"
    scene.render.filepath = str(out)
    bpy.ops.render.render(animation=True)


def ship_clips() -> None:
    from ..media import probe
    from .samples import sample_clip, source_spec, target_spec

    entry: dict = {"edn_commit": git_commit(), "files": {}}
    for spec in (target_spec(0), source_spec(0)):
        render = sample_clip(spec)  # cached, else rendered now (~7 minutes for both)
        info = probe(render)
        final = SHIPPED_DIR / CLIP_FILES[spec.role]
        with tempfile.TemporaryDirectory() as work:
            encoded = Path(work) / final.name
            subprocess.run([sys.executable, "-m", __spec__.name, "encode", str(render), str(encoded), str(info.fps),
                            f"{info.size[0]}x{info.size[1]}"], check=True)
            if probe(encoded).frame_count != info.frame_count:
                raise SystemExit(f"{encoded}: {probe(encoded).frame_count} frames, the render has {info.frame_count}")
            final.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(encoded, final)
        entry["files"][final.name] = {"sha256": file_sha256(final), "bytes": final.stat().st_size,
                                      "render_cache_key": spec.cache_key(), "frames": info.frame_count}
        print(f"{final}: {final.stat().st_size / 1e6:.2f} MB, {info.frame_count} frames")
    _update_manifest("clips", entry)


def ship_model(name: str) -> None:
    from .. import config, registry

    folder = registry.model_path(config.data_dir(), name)
    meta = registry.read_model_info(folder)
    target = SHIPPED_DIR / MODEL_DIR
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for file in MODEL_FILES:
        shutil.copyfile(folder / file, target / file)
    files = {file: {"sha256": file_sha256(target / file), "bytes": (target / file).stat().st_size} for file in MODEL_FILES}
    _update_manifest("model", {"edn_commit": git_commit(), "name": name, "preset": meta.get("preset"),
                               "mode": meta.get("mode"), "steps": meta.get("steps"), "files": files})
    print(f"{target}: {sum(f['bytes'] for f in files.values()) / 1e6:.2f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edn_server.demo.ship", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("clips", help="re-encode the cached sample renders into shipped/")
    model = commands.add_parser("model", help="copy a trained model's files into shipped/model/")
    model.add_argument("name")
    encode = commands.add_parser("encode", help="(internal) re-encode one movie to H.264 with bpy")
    encode.add_argument("source", type=Path)
    encode.add_argument("out", type=Path)
    encode.add_argument("fps", type=float)
    encode.add_argument("size")
    args = parser.parse_args(argv)
    if args.command == "clips":
        ship_clips()
    elif args.command == "model":
        ship_model(args.name)
    else:
        encode_h264(args.source, args.out, args.fps, tuple(int(v) for v in args.size.split("x")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
