"""Pickles that numpy 1.x can load, written under numpy 2.

numpy 2 pickles an array as a call of ``numpy._core.multiarray._reconstruct``; numpy before
1.26.1 has no ``numpy._core`` and fails on it (``No module named 'numpy._core'``), while numpy 2
still loads the numpy-1 name ``numpy.core.multiarray._reconstruct``. :class:`Numpy1Pickler` is
Python's pure-Python pickler with one change: a global whose module is ``numpy._core[.x]`` is
written as ``numpy.core[.x]``. Everything else is what ``pickle`` writes anyway.
"""
import pickle
from typing import IO, Any, Optional


class Numpy1Pickler(pickle._Pickler):
    """Pickles numpy objects under the module names numpy 1.x uses."""

    def save_global(self, obj: Any, name: Optional[str] = None) -> None:
        module = getattr(obj, '__module__', None) or ''
        if module == 'numpy._core' or module.startswith('numpy._core.'):
            qualname = name or obj.__qualname__
            old_module = 'numpy.core' + module[len('numpy._core'):]
            self.write(pickle.GLOBAL + f'{old_module}\n{qualname}\n'.encode('ascii'))
            self.memoize(obj)
            return
        super().save_global(obj, name)


def dump(obj: Any, file: IO[bytes], protocol: int = 2) -> None:
    """``pickle.dump(obj, file, protocol)`` with numpy-1 global names."""
    Numpy1Pickler(file, protocol).dump(obj)
