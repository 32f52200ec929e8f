"""The synthetic world: rendered scenes with known truth, their strict evaluators, and the
trainer of a micro Lavida-O that lives in it.

- `scene`: scenes of 1-4 solid shapes (circle, square, triangle) in GenEval's colours on plain
  backgrounds, 64-128 px, rendered deterministically; the truth is each object's kind, colour, box.
- `language`: GenEval-template captions with GenEval metadata, referring expressions, questions
  with answers, planning layouts and grounding answers in the release's LOC format.
- `edits`: edit instructions with their target scenes, and the check of an edit's outcome.
- `verdicts`: judge pairs (caption, matching or wrong image, the verdict the release's
  reflection loop reads: "is correct" or a feedback sentence).
- `detect`: the strict detector (colour segmentation + shape classification) behind the
  stand-in evaluator backends.
- `micro`, `mix`, `vqtrain`, `trainer`, `run`: the micro model's config, the training task mix,
  the VQ stage, the masked-diffusion objective and a whole run (`tools/train_world.py`).
"""
