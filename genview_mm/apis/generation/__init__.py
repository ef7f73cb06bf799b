"""The view-generation job behind ``tools/generate_views.py`` (the method itself is
:mod:`genview_mm.generation`): one module per stage, after img2dataset.

* :mod:`.sources`  list the source images, decode them as training does
* :mod:`.shards`   fixed shards, their records (completion markers), journals and locks
* :mod:`.writer`   output names, encoding and atomic writes (a thread pool)
* :mod:`.runner`   the loop: prefetch -> analyse -> bucket by level -> generate -> write
* :mod:`.settings` what a rerun must match, and what ``--overwrite`` may delete
* :mod:`.merge`    shard records -> ``manifest.jsonl`` (idempotent; any finisher runs it)
* :mod:`.job`      the command: launch mode, checks, model, runner, exit code
* :mod:`.errors`   the errors that stop a run and the failure kinds of single images
"""
