"""genview_mm: GenView (ECCV 2024) as an OpenMMLab plugin.

``import genview_mm`` (or ``custom_imports = dict(imports=['genview_mm'])`` in a config) applies
:mod:`genview_mm.compat` and registers the GenView components into MMPretrain's registries.
"""
from . import compat

compat.apply()

from . import datasets, engine, evaluation, foreground, generation, models, utils, visualization  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__']
