"""Where the generation job used to live: ``generate_views`` is now
:func:`genview_mm.apis.generation.runner.generate_views` (re-exported lazily for the
generator benchmark, without importing the job layer from the method at import time)."""


def __getattr__(name: str):
    if name in ('generate_views', 'DEFAULT_SHARD_SIZE'):
        from ..apis.generation import runner
        return getattr(runner, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
