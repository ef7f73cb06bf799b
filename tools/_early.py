"""The library's checks the tools run before their heavy imports.

``import genview_mm`` loads torch and the registries (seconds), so a tool checks its arguments
first. The check that a path can be written is the library's own
(``genview_mm.utils.file_safety.writable_problem``, standard library only): it is loaded here
from its file, without running ``genview_mm/__init__.py``, so there is one copy of the rule.
"""
import importlib.util
import os.path as osp


def _library_module(relpath: str):
    """A standard-library-only module of genview_mm, loaded from its file alone."""
    package = importlib.util.find_spec('genview_mm')  # found, not imported
    if package is None or not package.submodule_search_locations:
        raise ImportError('genview_mm is not importable: install it (pip install -e .) or run '
                          'the tool from the repository')
    path = osp.join(list(package.submodule_search_locations)[0], relpath)
    spec = importlib.util.spec_from_file_location(f'_genview_early_{osp.basename(path)[:-3]}',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


writable_problem = _library_module('utils/file_safety.py').writable_problem
