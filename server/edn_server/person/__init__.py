"""The person layer (numpy + OpenCV only): a static background plate estimated from the target's
frames and person masks, the check that the background really is static, the window that follows
the person through a clip, and the composite of a generated person over the plate.

    plate.py      estimate_plate, check_background, sample_indices
    window.py     person_windows, cut_window, paste_window
    composite.py  output_size, Compositor (composite frames or RGBA person frames)
"""
