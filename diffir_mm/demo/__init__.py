"""The pieces of ``tools/demo.py``: task definitions and data (:mod:`.tasks`), figure and scores
(:mod:`.report`). Imports MMagic lazily, where a step needs it."""
