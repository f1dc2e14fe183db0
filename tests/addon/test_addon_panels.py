"""The sidebar and the preferences drawn in every state with a stand-in layout (headless Blender
has no windows to draw in): every property they show exists, every button is a real operator,
and each state shows the text a user needs."""
from __future__ import annotations

import threading

import pytest
from addon_helpers import add_movie_strip, prefs

bpy = pytest.importorskip("bpy")


class Layout:
    """Records what a draw function puts on screen, checking names against Blender's RNA."""

    def __init__(self, log: list):
        self.log = log
        self.use_property_split = self.alert = False
        self.scale_y = 1.0

    def _child(self, *args, **kwargs):
        return Layout(self.log)

    row = column = box = split = _child

    def label(self, text="", icon="NONE", **kwargs):
        self.log.append(("label", text, icon))

    def separator(self, **kwargs):
        pass

    def prop(self, data, name, text=None, **kwargs):
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no property {name!r}"
        self.log.append(("prop", name, text))

    def operator(self, idname, text=None, icon="NONE", **kwargs):
        category, name = idname.split(".")
        assert getattr(getattr(bpy.ops, category), name).idname() == f"{category.upper()}_OT_{name}"
        self.log.append(("operator", idname, text))

        class Properties:  # what operator() returns: settable operator properties
            pass

        return Properties()

    def template_icon(self, icon_value=0, scale=1.0):
        assert icon_value >= 0 and scale >= 1.0  # headless Blender makes no icons: a preview's icon_id is 0
        self.log.append(("template_icon", icon_value))

    def progress(self, factor=0.0, type="BAR", text=""):
        assert 0.0 <= factor <= 1.0
        self.log.append(("progress", round(factor, 3), text))

    def texts(self) -> str:
        return "\n".join(str(entry[2] if entry[0] == "progress" else entry[1]) for entry in self.log)


def draw(function, context=None) -> Layout:
    layout = Layout([])
    function(layout, context or bpy.context)
    return layout


def _job(scene, **values):
    record = scene.edn.jobs.add()
    record.uid, record.kind, record.source_strip, record.target = f"j{len(scene.edn.jobs)}", "transfer", "dance", "anna"
    for key, value in values.items():
        setattr(record, key, value)
    return record


def test_panels_are_registered_in_the_sequencer_sidebar(addon):
    for name in ("EDN_PT_main", "EDN_PT_normalization", "EDN_PT_training", "EDN_PT_jobs"):
        panel = getattr(bpy.types, name)
        assert (panel.bl_space_type, panel.bl_region_type, panel.bl_category) == ("SEQUENCE_EDITOR", "UI", "Motion Transfer")


def test_layout_progress_exists_in_this_blender():
    assert bpy.types.UILayout.bl_rna.functions.get("progress") is not None


def test_main_panel_without_a_strip_and_with_one(addon, local_prefs, scene, clip24):
    assert addon.panels.EDN_PT_main.poll(bpy.context)
    empty = draw(addon.panels.draw_main)
    assert "Select a movie or image strip" in empty.texts()
    assert ("prop", "target_model_choice", "Target") in empty.log
    assert {("operator", "edn.preview_poses", None), ("operator", "edn.transfer_motion", None)} <= set(empty.log)
    add_movie_strip(addon, scene, clip24, name="dance")
    assert "Source: dance" in draw(addon.panels.draw_main).texts()
    scene.edn.last_error = "The edn server at http://x:1 rejected the token. " * 3
    shown = draw(addon.panels.draw_main).log
    error_lines = [entry for entry in shown if entry[0] == "label" and "rejected" in entry[1]]
    assert error_lines and all(len(entry[1]) <= addon.panels.WRAP for entry in error_lines) and error_lines[0][2] == "ERROR"


def test_settings_and_training_panels_show_every_slider(addon, local_prefs, scene, clip24):
    shown = {entry[1] for entry in draw(addon.panels.draw_normalization).log if entry[0] == "prop"}
    assert shown == {"auto_normalize", "scale", "offset_x", "offset_y", "smoothing", "mirror"}  # normalization only
    main = {entry[1] for entry in draw(addon.panels.draw_main).log if entry[0] == "prop"}
    assert {"pose_model", "face_refinement", "output_dir"} <= main
    add_movie_strip(addon, scene, clip24, name="anna_target.mp4")
    training = draw(addon.panels.draw_training)
    assert {"train_name", "quality_preset", "train_minutes"} <= {e[1] for e in training.log if e[0] == "prop"}
    assert "Default name: anna_target" in training.texts() and ("operator", "edn.train_target", None) in training.log
    assert "Default name: anna_target.mp4" not in training.texts()  # the name the model will get, without .mp4
    assert "include preparing the clip" in training.texts()  # what the time budget counts


def test_small_wording_fixes(addon, local_prefs, scene):
    """Item 10's small things: tooltips that are true and present, no red icon for a server not started yet."""
    edn = bpy.types.Scene.bl_rna.properties["edn"].fixed_type
    preview = next(i for i in edn.properties["quality_preset"].enum_items if i.identifier == "preview")
    assert "128 px" in preview.description and "256" not in preview.description
    assert prefs().bl_rna.properties["mode"].description
    assert [i.identifier for i in edn.properties["pose_model"].enum_items] == ["lite", "full", "heavy"]
    assert "slower" in edn.properties["pose_model"].enum_items["heavy"].description
    addon.session.state.server = addon.session.ServerStatus(code="NOT_RUNNING", message="The local edn server is not running")
    assert ("label", "The local edn server is not running", "INFO") in draw(addon.panels.draw_main).log
    addon.session.state.server = addon.session.ServerStatus(code="PYTHON_MISSING", message="No Python for the edn server")
    assert ("label", "No Python for the edn server", "ERROR") in draw(addon.panels.draw_main).log


def test_the_target_menu_shows_steps_minutes_and_a_warning(addon, local_prefs, scene, clip24):
    warning = {"code": "UNDER_TRAINED", "message": "Model 'quick' trained only 2 steps; ... Continue its training."}
    addon.session.state.models = [{"name": "anna", "info": {"steps": 3200, "training": {"seconds": 720.0}}, "warning": None},
                                  {"name": "quick", "info": {"steps": 2, "training": {"seconds": 6.0}}, "warning": warning}]
    addon.session.state.models_loaded = True
    listed = addon.properties._model_items(scene.edn, bpy.context)
    assert [(i[0], i[1], i[3]) for i in listed] == [("anna", "anna · 3 200 steps · 12 min", "NONE"),
                                                   ("quick", "quick · 2 steps · 6 s", "ERROR")]
    scene.edn.target_model_choice = "quick"
    assert scene.edn.target_model == "quick"
    assert "trained only 2 steps" in draw(addon.panels.draw_main).texts()  # said next to the menu, too
    scene.edn.target_model_choice = "anna"
    assert "trained only" not in draw(addon.panels.draw_main).texts()

    # the Model Name is taken: the panel offers Resume Training instead of a training that would be refused
    add_movie_strip(addon, scene, clip24, name="anna.mp4")
    training = draw(addon.panels.draw_training)
    assert "A model named 'anna' exists" in training.texts() and ("operator", "edn.resume_training", None) in training.log
    assert ("operator", "edn.train_target", None) not in training.log
    scene.edn.train_name = "anna 2"
    assert ("operator", "edn.train_target", None) in draw(addon.panels.draw_training).log


def test_jobs_panel_in_every_state(addon, local_prefs, scene):
    assert "No jobs yet" in draw(addon.panels.draw_jobs).texts()
    _job(scene, state="submitting")
    _job(scene, state="queued")
    _job(scene, state="running", progress=0.42, stage="generate frames", eta_s=70)
    _job(scene, state="done", placed=False, stage="downloading frames")
    _job(scene, state="done", placed=True, stage="strip 'dance > anna' on channel 2", result_strip="dance > anna")
    _job(scene, state="failed", error_code="NO_PERSON", error_message="No person was found in frames 0-23 of dance.mp4.")
    _job(scene, state="cancelled")
    _job(scene, kind="train", state="interrupted", error_message="The server stopped while the job ran.")
    _job(scene, state="not_sent", error_message="Cannot reach the edn server at http://127.0.0.1:9 (refused).")
    _job(scene, state="running", progress=0.1, stage="waiting for the server", note="Cannot reach the edn server at "
         "http://127.0.0.1:8765: the connection was refused. Is it running? Start it in the preferences.")
    layout = draw(addon.panels.draw_jobs)
    text = layout.texts()
    assert ("progress", 0.42, "Transfer: Running, generate frames, 42%, 1 min 10 s left") in layout.log
    assert "Transfer: Done, strip 'dance > anna' on channel 2" in text and "Transfer: Cancelled" in text
    assert "No person was found in frames 0-23" in text and "Train: Interrupted (server stopped)" in text
    assert "The server stopped while the job ran." in text and "Cannot reach the edn server" in text
    # a server that does not answer: the bar says so in a few words, the reason is wrapped below it
    assert ("progress", 0.1, "Transfer: Running, waiting for the server, 10%") in layout.log
    assert "the connection was refused. Is it running?" in " ".join(text.split())
    # the 8 newest are shown: the first two (submitting, queued) are not; Cancel on the 3 unfinished ones shown
    assert "Transfer: Submitting" not in text and "Transfer: Queued" not in text
    assert sum(1 for e in layout.log if e[:2] == ("operator", "edn.cancel_job")) == 3
    assert ("operator", "edn.clear_jobs", None) in layout.log
    bpy.ops.edn.clear_jobs()
    assert [(r.state, r.placed) for r in scene.edn.jobs] == [("submitting", False), ("queued", False), ("running", False),
                                                            ("done", False), ("running", False)]


def test_an_upload_and_a_download_show_their_bytes_on_the_job(addon, local_prefs, scene):
    """A background thread reports bytes moved; the timer puts them on the record the panel draws."""
    sending = _job(scene, state="submitting")
    fetching = _job(scene, state="done", placed=False, stage="downloading frames")
    state, step, held = addon.session.state, addon.job_records.Step, threading.Event()
    # an upload and a download under way: calls that wait for the test, and their threads' reports
    assert state.runner.start((step.SUBMIT, sending.uid), held.wait, lambda value, error: None)
    assert state.runner.start((step.FETCH, fetching.uid), held.wait, lambda value, error: None)
    state.track(sending.uid).transfer = ("uploading", 30_000_000, 120_000_000)
    state.track(fetching.uid).transfer = ("downloading frames", 9_500_000, 10_000_000)
    addon.poller.tick()
    assert (sending.state, sending.stage, round(sending.progress, 3)) == ("submitting", "uploading 30.0 of 120.0 MB", 0.25)
    layout = draw(addon.panels.draw_jobs)
    assert ("progress", 0.25, "Transfer: Submitting, uploading 30.0 of 120.0 MB") in layout.log
    assert ("progress", 0.95, "Transfer: Done, downloading frames 9.5 of 10.0 MB") in layout.log
    scene.edn.jobs.clear()  # the held calls end with nothing left to update
    held.set()


def test_preferences_in_both_modes(addon, local_prefs, scene, edn_server):
    p = prefs()
    addon.session.state.server = addon.session.ServerStatus(code="OK", message="Connected to http://127.0.0.1:1", version="0.1")

    def draw_prefs(layout, context):
        type(p).draw(_Bound(p, layout), context)

    local = draw(draw_prefs)
    assert {"mode", "python_path", "data_dir"} <= {e[1] for e in local.log if e[0] == "prop"}
    assert f"Server log: {addon.preferences.log_path()}" in local.texts()
    assert "Connected to http://127.0.0.1:1 (edn 0.1)" in local.texts()
    assert {"edn.test_connection", "edn.start_server", "edn.stop_server"} <= {e[1] for e in local.log if e[0] == "operator"}

    p.mode, p.remote_url, p.remote_token = "REMOTE", "http://gpu-box.example:8765", ""
    remote = draw(draw_prefs)
    assert {"remote_url", "remote_token"} <= {e[1] for e in remote.log if e[0] == "prop"}
    assert "edn.start_server" not in {e[1] for e in remote.log if e[0] == "operator"}
    if not bpy.app.online_access:
        assert "online access is off" in remote.texts()


class _Bound:
    """The preferences seen through a stand-in layout (Blender's own `layout` is read-only)."""

    def __init__(self, prefs_struct, layout):
        self._prefs, self.layout = prefs_struct, layout

    def __getattr__(self, name):
        return getattr(self._prefs, name)
