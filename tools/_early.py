"""The library's checks the tools run before their heavy imports.

``import genview_mm`` loads torch and the registries (seconds), so a tool checks its arguments
first, with the library's own rules where they live in standard-library-only modules
(``utils/file_safety.py``: may this path be written or replaced; the extra-image seed rule): they
are loaded here from their files, without running ``genview_mm/__init__.py``, so each rule has
one copy. Their exceptions are this copy's classes: catch them from the same module.
"""
import functools
import importlib.util
import os.path as osp


@functools.lru_cache(maxsize=None)
def library_module(relpath: str):
    """A standard-library-only module of genview_mm (``relpath`` under the package), loaded
    from its file alone."""
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


writable_problem = library_module('utils/file_safety.py').writable_problem
config_dump_problem = library_module('utils/file_safety.py').config_dump_problem
same_file = library_module('utils/file_safety.py').same_file
