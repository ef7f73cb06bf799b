"""The candidate images of an extra set, streamed one relative path at a time.

A source is a folder (walked recursively) or a list file (one path per line, relative to the
data root or absolute). Either way only image files count (:data:`IMAGE_EXTENSIONS`, any case),
dot-files and dot-folders are skipped, and every path is yielded relative to the data root with
``/`` separators: the form an annotation list stores and :class:`CustomDataset` reads. Nothing
is collected: a source of 100M files costs the memory of one directory listing.
"""
import os
import os.path as osp
import posixpath
from typing import Iterator, Set, Tuple

from ...utils.annotation_list import read_annotation_list
from ...utils.image_files import is_image_file


def relative_to(path: str, data_root: str) -> str:
    """``path`` relative to ``data_root`` with ``/`` separators.

    Raises:
        ValueError: ``path`` is not inside ``data_root``.
    """
    rel = osp.relpath(osp.abspath(path), osp.abspath(data_root)).replace(os.sep, '/')
    if rel == '..' or rel.startswith('../'):
        raise ValueError(f'{path} is not inside the data root {data_root}: give --data-root a '
                         'folder that holds every extra image')
    return rel


def iter_image_entries(folder: str) -> Iterator[Tuple[os.DirEntry, str]]:
    """(entry, path relative to ``folder``) of the image files under ``folder``, recursively.

    Dot-files and dot-folders are skipped, and so are names with a line break (a list cannot
    hold them). Links to folders are followed, each folder once (a link loop ends the walk of
    that branch).
    """
    seen: Set[Tuple[int, int]] = set()
    stack = [(folder, '')]
    while stack:
        current, rel = stack.pop()
        info = os.stat(current)
        if (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        with os.scandir(current) as entries:
            for entry in entries:
                if entry.name.startswith('.') or '\n' in entry.name or '\r' in entry.name:
                    continue
                if entry.is_dir():
                    stack.append((entry.path, rel + entry.name + '/'))
                elif is_image_file(entry.name) and entry.is_file():
                    yield entry, rel + entry.name


def iter_folder(folder: str, data_root: str) -> Iterator[str]:
    """Image files under ``folder`` (:func:`iter_image_entries`).

    Args:
        folder (str): the folder to walk.
        data_root (str): the folder the yielded paths are relative to (``folder`` or above).

    Yields:
        str: a path relative to ``data_root``.
    """
    prefix = relative_to(folder, data_root)
    prefix = '' if prefix == '.' else prefix + '/'
    for _, rel in iter_image_entries(folder):
        yield prefix + rel


def iter_list(list_file: str, data_root: str) -> Iterator[str]:
    """Image paths of a list file, read by the one annotation-list reader
    (:func:`~genview_mm.utils.annotation_list.read_annotation_list`: blank lines and ``#``
    comments skipped, a trailing integer label dropped); dot-files and non-images skipped.

    Args:
        list_file (str): one path per line, relative to ``data_root`` or absolute.
        data_root (str): the folder the yielded paths are relative to.

    Yields:
        str: a normalised path relative to ``data_root``.

    Raises:
        ValueError: a path points outside ``data_root``.
    """
    for entry, _ in read_annotation_list(list_file):
        name = posixpath.basename(entry.replace(os.sep, '/'))
        if name.startswith('.') or not is_image_file(name):
            continue
        if osp.isabs(entry):
            yield relative_to(entry, data_root)
            continue
        rel = posixpath.normpath(entry.replace(os.sep, '/'))
        if rel == '..' or rel.startswith('../'):
            raise ValueError(f'{list_file}: {entry} points outside the data root '
                             f'{data_root}: give --data-root a folder that holds it')
        yield rel


def iter_candidates(source: str, data_root: str) -> Iterator[str]:
    """:func:`iter_folder` for a folder, :func:`iter_list` for a file."""
    if osp.isdir(source):
        return iter_folder(source, data_root)
    if osp.isfile(source):
        return iter_list(source, data_root)
    raise FileNotFoundError(f'{source} is neither a folder nor a list file')
