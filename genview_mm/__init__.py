"""genview_mm: GenView (ECCV 2024) as an OpenMMLab plugin.

``import genview_mm`` (or ``custom_imports = dict(imports=['genview_mm'])`` in a config) applies
:mod:`genview_mm.compat` and registers the GenView components into MMPretrain's registries.
"""
from .utils import interrupt as _interrupt

_interrupt.install_if_tool()  # Ctrl-C in a tool: one line, not a traceback (before torch loads)

from . import compat  # noqa: E402

compat.apply()

from . import datasets, engine, evaluation, foreground, generation, models, utils, visualization  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__']
