"""The view-generation job behind ``tools/generate_views.py`` (the method is
:mod:`genview_mm.generation`), one module per stage after img2dataset: :mod:`.sources` (list and
decode), :mod:`.shards` (fixed shards, records, locks, merge), :mod:`.writer` (names, atomic
writes), :mod:`.runner` (the loop), :mod:`.settings` (what a rerun must match) and :mod:`.job`
(the command and its errors)."""
