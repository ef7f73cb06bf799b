"""The old name of the test helpers, kept only for tools/benchmarks/bench_generator.py (it puts
tests/ on ``sys.path`` and imports photos and the tiny unCLIP from here). Tests import
:mod:`helpers`; this module can go once that tool imports from :mod:`genview_mm.demo`."""
from helpers.data import sample_photos, save_tiny_unclip, write_photos  # noqa: F401
