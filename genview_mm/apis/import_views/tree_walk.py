"""Walk a source tree and a views tree side by side, one folder at a time (streaming)."""
import logging
import os
import os.path as osp
from typing import Iterator, List, NamedTuple, Optional, Tuple

from ...utils.image_files import IMAGE_EXTENSIONS, is_hidden
from .folder_match import pair_by_form

logger = logging.getLogger(__name__)


class FolderPair(NamedTuple):
    """One relative folder of both trees: its image files in the source tree and all its files
    in the views tree (sorted names; empty where the folder is absent on that side)."""
    rel: str  # '' for the roots, else '/'-separated
    source_dir: Optional[str]
    view_dir: Optional[str]
    sources: List[str]
    views: List[str]


def scan_folder(path: Optional[str], skip: Tuple[str, ...] = (),
                ancestors: Tuple[str, ...] = ()) -> Tuple[List[str], List[str]]:
    """(sorted file names, sorted sub-folder names) of one folder, following symlinks like
    ``os.walk(followlinks=True)``, without hidden files (``.x``, ``._x``: the training
    datasets and the generation skip them, and walk hidden folders); ``([], [])`` for None.
    Sub-folders whose absolute path is in ``skip`` are left out, and so, with a warning, are
    links back to a folder whose real path is in ``ancestors`` (a symlink cycle: walked, it
    would never end)."""
    if path is None:
        return [], []
    files, dirs = [], []
    with os.scandir(path) as it:
        for entry in it:
            try:
                is_dir = entry.is_dir()
            except OSError:  # a dangling link or a file gone meanwhile
                continue
            if not is_dir:  # not macOS's ._x beside each x (hidden folders, as MMPretrain's
                if not is_hidden(entry.name):  # datasets, are walked)
                    files.append(entry.name)
            elif osp.realpath(entry.path) in ancestors:
                logger.warning('skipping %s: a symlink cycle (it leads back to %s)', entry.path,
                               osp.realpath(entry.path))
            elif osp.abspath(entry.path) not in skip:
                dirs.append(entry.name)
    files.sort()
    dirs.sort()
    return files, dirs


def walk_pair(source_root: str, views_root: str) -> Iterator[FolderPair]:
    """Yield every folder of the union of both trees, depth first in sorted name order.

    Only the current folder's listings (and the sub-folder names of its ancestors) are held,
    so memory is bounded by the largest folder, not by the number of files. A views root
    inside the source root (or the other way round) is not walked as part of the other tree.

    Args:
        source_root (str): folder of the source images.
        views_root (str): folder of the views, mirroring ``source_root``.
    """
    source_root, views_root = osp.abspath(source_root), osp.abspath(views_root)
    yield from _walk(source_root, views_root, '', (views_root, ), (source_root, ), (), ())


def _walk(src: Optional[str], view: Optional[str], rel: str, src_skip: Tuple[str, ...],
          view_skip: Tuple[str, ...], src_up: Tuple[str, ...],
          view_up: Tuple[str, ...]) -> Iterator[FolderPair]:
    src_up += (osp.realpath(src), ) if src else ()  # the real folders above, for cycles
    view_up += (osp.realpath(view), ) if view else ()
    src_files, src_dirs = scan_folder(src, src_skip, src_up)
    view_files, view_dirs = scan_folder(view, view_skip, view_up)
    sources = [f for f in src_files if osp.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
    del src_files
    yield FolderPair(rel, src, view, sources, view_files)
    del sources, view_files
    alias = pair_by_form(src_dirs, view_dirs)  # a folder name in another Unicode form
    view_of = {alias.get(name, name): name for name in view_dirs}  # the source's spelling
    src_set = set(src_dirs)
    for name in sorted(src_set | view_of.keys()):
        yield from _walk(osp.join(src, name) if name in src_set else None,
                         osp.join(view, view_of[name]) if name in view_of else None,
                         f'{rel}/{name}' if rel else name, src_skip, view_skip, src_up, view_up)
