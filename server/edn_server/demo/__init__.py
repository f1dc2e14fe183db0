"""`make demo`: the sample dancers (rendered with Blender), the model they train and the walkthrough."""
