"""Names and sentences a user reads (no bpy): short unique strip names cut between words, the Target
menu's model line, and server messages worded for Blender (buttons, fields, timeline frames)."""
from __future__ import annotations

from addon_helpers import pure

naming = pure("naming")
messages = pure("messages")


def test_default_model_names_drop_the_movie_extension():
    assert naming.default_model_name("anna_target.mp4") == "anna_target"
    assert naming.default_model_name("my clip: take 2.mov") == "my clip_ take 2"
    assert naming.default_model_name("???.mp4") == "target"


def test_result_strip_names_are_short_unique_and_cut_between_words():
    assert naming.result_strip_name("dance.mp4", "anna", "transfer") == "dance.mp4 > anna"
    assert naming.result_strip_name("dance.mp4", "anna", "preview_poses") == "dance.mp4 poses"
    long_source = "rehearsal of the second act with the whole company, wide shot"
    name = naming.result_strip_name(long_source, "anna in the red dress from the final take", "transfer")
    assert len(name.encode()) <= naming.STRIP_NAME_BYTES
    assert name == "rehearsal of the second… > anna in the red dress…"
    assert len(naming.result_strip_name("ä" * 40, "b" * 40, "transfer").encode()) <= naming.STRIP_NAME_BYTES
    preview = naming.result_strip_name(long_source, "anna", "preview_poses")
    assert preview.endswith("… poses") and len(preview.encode()) <= naming.STRIP_NAME_BYTES
    taken = {"dance.mp4 > anna", "dance.mp4 > anna 2"}
    assert naming.result_strip_name("dance.mp4", "anna", "transfer", taken) == "dance.mp4 > anna 3"


def test_the_target_menu_shows_steps_and_minutes():
    model = {"name": "anna", "info": {"steps": 3200, "training": {"seconds": 722.4}}}
    assert naming.model_label(model) == "anna · 3 200 steps · 12 min"
    assert naming.model_label({"name": "quick", "info": {"steps": 2, "training": {"seconds": 6.0}}}) == "quick · 2 steps · 6 s"
    assert naming.model_label({"name": "saved"}) == "saved"  # a saved choice the list does not know (yet)
    assert naming.model_label({**model, "mode": "full-frame"}) == "anna · full-frame · 3 200 steps · 12 min"


def test_the_target_menus_tooltip_says_the_warning_then_the_mode():
    warning = {"code": "UNDER_TRAINED", "message": "Model 'anna' trained only 2 steps. Continue its training."}
    person = naming.model_description({"name": "anna", "mode": "person", "warning": warning})
    assert person.startswith("Model 'anna' trained only 2 steps. Continue its training. Person model 'anna'")
    old = naming.model_description({"name": "old", "mode": "full-frame", "mode_reason": "trained before the person layer"})
    assert old == "Full-frame model 'old': whole frames, no alpha (trained before the person layer)"
    assert naming.model_description({"name": "saved"}) == "Trained target 'saved'"


WHERE = messages.Where(strip="dance.mp4", model="anna", media_first=3, timeline_start=14)


def test_server_messages_name_buttons_fields_and_timeline_frames():
    no_person = ("No person was found in frames [3, 19) of /clips/dance.mp4. Choose a clip or frame range where one person "
                 "is visible (ideally head to toe, not tiny, reasonably lit), or try the 'heavy' model.")
    text = messages.for_blender("NO_PERSON", no_person, None, WHERE)
    assert "timeline frames 14-29 of strip 'dance.mp4'" in text and "set Pose Model to Heavy in the sidebar" in text
    assert "[" not in text and "'heavy' model" not in text and "/clips/" not in text

    exists = messages.for_blender("MODEL_EXISTS", "A trained model named 'anna' already exists on this server. ...",
                                  "params.name", WHERE)
    assert "Resume Training" in exists and "Model Name" in exists and "/v1/" not in exists
    missing = messages.for_blender("MODEL_NOT_FOUND", "No trained model named 'anna' on this server. List them with "
                                   "GET /v1/models, or train one first.", "params.model", WHERE)
    assert "Refresh Models" in missing and "GET" not in missing
    output = messages.for_blender("BAD_PARAMS", "Parameter params.output_dir is invalid: Value error, /root/x is not "
                                  "writable.", "params.output_dir", WHERE)
    assert output.startswith("The Output Folder setting cannot be used: /root/x is not writable.")
    assert "params." not in output and "Value error" not in output


def test_an_under_trained_warning_points_at_resume_training():
    warning = ("Model 'quick' trained only 2 steps; a preview model needs about 500 before its frames look like the person "
               "(until then they look like coloured noise). Continue its training for more minutes.")
    text = messages.for_blender("UNDER_TRAINED", warning)
    assert text.startswith("Model 'quick' trained only 2 steps") and "Press Resume Training" in text
