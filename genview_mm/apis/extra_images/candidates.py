"""The candidate images of an extra set, streamed one relative path at a time.

A source is a folder (walked recursively) or a list file (one path per line, relative to the
data root or absolute). Either way only image files count (:data:`IMAGE_EXTENSIONS`, any case),
dot-files and dot-folders are skipped, and every path is yielded relative to the data root with
``/`` separators: the form an annotation list stores and :class:`CustomDataset` reads. Nothing
is collected: a source of 100M files costs the memory of one directory listing.
"""
import logging
import os
import os.path as osp
import posixpath
from typing import Iterator, List, Optional, Set, Tuple

from ...utils.annotation_list import read_annotation_list
from ...utils.file_safety import lies_under
from ...utils.image_files import is_hidden, is_image_file

logger = logging.getLogger(__name__)


class OutsideDataRoot(ValueError):
    """A candidate (or the source folder) is not inside the data root: a rerun with the same
    data root and source stops on it again."""


def relative_to(path: str, data_root: str) -> str:
    """``path`` relative to ``data_root`` with ``/`` separators; when its folder is inside
    ``data_root`` only once links are resolved (``data_root`` a link to the dump), relative to
    the resolved root.

    Raises:
        OutsideDataRoot: ``path`` is not inside ``data_root``.
    """
    rel = _relative(osp.abspath(path), osp.abspath(data_root))
    if rel is None:  # the file's own name stays: a link to a file is read through its name
        folder, name = osp.split(osp.abspath(path))
        rel = _relative(osp.join(osp.realpath(folder), name), osp.realpath(data_root))
    if rel is None:
        raise OutsideDataRoot(f'{path} is not inside the data root {data_root}: give '
                              '--data-root a folder that holds every extra image')
    return rel


def _relative(path: str, root: str) -> Optional[str]:
    """``path`` relative to ``root`` with ``/`` separators; None if it is outside."""
    rel = osp.relpath(path, root).replace(os.sep, '/')
    return None if rel == '..' or rel.startswith('../') else rel


class Walk:
    """Where a folder walk stands between two directories: the folders left to list (a
    stack of ``(absolute path, relative path)``: a rerun from another folder goes on), the
    folders listed (``(st_dev, st_ino)``: each once; ``root_dev`` the top folder's device),
    the names skipped and the folders gone so far; :meth:`to_json` and :meth:`from_json`
    carry it over a stop."""

    def __init__(self, folder: str) -> None:
        self.stack: List[Tuple[str, str]] = [(osp.abspath(folder), '')]
        self.seen: Set[Tuple[int, int]] = set()
        self.root_dev: Optional[int] = None
        self.unlistable, self.example, self.gone = 0, '', 0
        self.real_root: Optional[str] = None  # the walked folder's real path (renumber)

    def to_json(self) -> dict:
        return dict(stack=list(self.stack), seen=sorted(self.seen), root_dev=self.root_dev,
                    unlistable=self.unlistable, example=self.example, gone=self.gone)

    @classmethod
    def from_json(cls, state: dict) -> 'Walk':
        walk = cls('')
        walk.stack = [(path, rel) for path, rel in state['stack']]
        walk.seen = {(dev, ino) for dev, ino in state['seen']}
        walk.root_dev, walk.unlistable, walk.example, walk.gone = (
            state['root_dev'], state['unlistable'], state['example'], state['gone'])
        return walk

    def inside(self, path: str) -> bool:
        """Whether ``path`` (a link) leads to something in the walked folder, or to it."""
        if self.real_root is None:
            return False
        target = osp.realpath(path)
        return (target == self.real_root or lies_under(target, self.real_root)) and \
            osp.exists(target)  # a broken link's target is walked by no other path

    def renumber(self, folder: str) -> None:
        """Take the top folder's device number as it is now for the folders seen on it (another
        node, a remount: a network file system is numbered anew)."""
        self.real_root = osp.realpath(folder)
        now = os.stat(folder).st_dev
        if self.root_dev is not None and now != self.root_dev:
            self.seen = {(now if dev == self.root_dev else dev, ino) for dev, ino in self.seen}
        self.root_dev = now


def iter_image_entries(folder: str, walk: Optional[Walk] = None, broken_links: bool = False
                       ) -> Iterator[Optional[Tuple[os.DirEntry, str]]]:
    """(entry, path relative to ``folder``) of the image files under ``folder``, recursively.

    Dot-files and dot-folders are skipped, and so are names a UTF-8 list cannot hold (a line
    break, or bytes that are not UTF-8), with a warning that counts them. Links into ``folder``
    itself are not followed (their targets are walked under their own paths, so the paths do
    not depend on the listing order); links to folders elsewhere are followed, each folder once
    (a link loop ends the walk of that branch); one removed before
    the walk reaches it is counted in a warning. With ``walk`` (a :class:`Walk` of ``folder``,
    new or carried over a stop) the walk goes on from it and yields None after each directory,
    where ``walk`` holds the rest. ``broken_links``: also links to a missing file (their names
    are ImageNet's all the same).
    """
    marks, walk = walk is not None, walk or Walk(folder)
    walk.renumber(folder)
    while walk.stack:
        current, rel = walk.stack.pop()
        try:
            info = os.stat(current)
            listing = os.scandir(current)
        except FileNotFoundError:  # removed since its parent was listed (or since a stop)
            if not rel:
                raise
            walk.gone += 1
            continue
        if (info.st_dev, info.st_ino) in walk.seen:
            listing.close()
            continue
        walk.seen.add((info.st_dev, info.st_ino))
        folders = []  # walked in name order: which of two links to one folder elsewhere wins
        with listing as entries:  # (its path) is the tree's, not the listing order's
            for entry in entries:
                if is_hidden(entry.name):
                    continue
                if not listable(entry.name):
                    walk.unlistable += 1
                    walk.example = walk.example or rel + entry.name
                elif entry.is_symlink() and walk.inside(entry.path):
                    continue  # its target is walked as itself: one path, whatever the order
                elif entry.is_dir():
                    folders.append((entry.path, rel + entry.name + '/'))
                elif is_image_file(entry.name) and (entry.is_file() or (
                        broken_links and entry.is_symlink())):
                    yield entry, rel + entry.name
        walk.stack += sorted(folders, key=lambda folder: folder[1], reverse=True)
        if marks:
            yield None
    if walk.unlistable:
        logger.warning('%s: skipped %d names that a list cannot hold (a line break, or bytes '
                       'that are not UTF-8), e.g. %r: rename them to include them', folder,
                       walk.unlistable, walk.example)
    if walk.gone:
        logger.warning('%s: %d folders were removed before the walk reached them (after their '
                       'parent was listed, or after the scan was saved)', folder, walk.gone)


def listable(name: str) -> bool:
    """Whether a UTF-8 annotation list can hold ``name`` (one line, valid UTF-8)."""
    if '\n' in name or '\r' in name:
        return False
    try:
        name.encode('utf-8')
    except UnicodeEncodeError:  # undecodable bytes, kept by the OS as surrogates
        return False
    return True


def iter_folder(folder: str, data_root: str) -> Iterator[str]:
    """Image files under ``folder`` (:func:`iter_image_entries`), relative to ``data_root``
    (``folder`` or above)."""
    return (rel for rel in Scan(folder, data_root) if rel is not None)


def iter_list(list_file: str, data_root: str) -> Iterator[str]:
    """Image paths of a list file, read by the one annotation-list reader
    (:func:`~genview_mm.utils.annotation_list.read_annotation_list`: blank lines and ``#``
    comments skipped, a trailing integer label dropped, a byte-order mark too); dot-files and
    non-images skipped.

    Args:
        list_file (str): one path per line, relative to ``data_root`` or absolute.
        data_root (str): the folder the yielded paths are relative to.

    Yields:
        str: a normalised path relative to ``data_root``.

    Raises:
        OutsideDataRoot: a path points outside ``data_root``.
    """
    for entry, _ in read_annotation_list(list_file):
        rel = posixpath.normpath(entry.replace(os.sep, '/'))
        if not is_image_file(rel.rsplit('/', 1)[-1]):
            continue
        if osp.isabs(entry):  # its dot-folders are those under the data root, as a walk's
            rel = relative_to(entry, data_root)  # (a root in ~/.cache holds every image)
        if any(is_hidden(part) and part != '..' for part in rel.split('/')):
            continue  # as a folder walk: dot-files, dot-folders
        if rel == '..' or rel.startswith('../'):
            raise OutsideDataRoot(f'{list_file}: {entry} points outside the data root '
                                  f'{data_root}: give --data-root a folder that holds it')
        yield rel


def check_source(source: str, data_root: str) -> None:
    """Raise at once what a scan would stop on: ``source`` neither a folder nor a list file,
    ``data_root`` not a folder (a list's paths all missing, said after the whole scan)
    (FileNotFoundError), or a folder not inside ``data_root`` (:class:`OutsideDataRoot`),
    found before any long work (ImageNet's walk, the scan)."""
    if not (osp.isdir(source) or osp.isfile(source)):
        raise FileNotFoundError(f'{source} is neither a folder nor a list file')
    if not osp.isdir(data_root):
        raise FileNotFoundError(f'the data root {data_root} is not a folder: give --data-root '
                                'the folder that holds the extra images')
    if osp.isdir(source):
        relative_to(source, data_root)


class Scan:
    """The candidate images of a source, a folder (:func:`iter_image_entries`) or a list file
    (:func:`iter_list`), as paths relative to ``data_root``, and None at each place the scan
    may stop and resume from: after each of a folder's directories, every ``every`` list
    entries. There :attr:`position` (JSON) is what ``Scan(source, data_root, position)`` goes
    on from; a list's is the count of its entries read (it must not change meanwhile)."""

    def __init__(self, source: str, data_root: str, position=None, every: int = 10_000) -> None:
        check_source(source, data_root)
        self.source, self.data_root, self.every = source, data_root, every
        self._start, self._walk, self._count = position, None, 0

    @property
    def position(self):
        """Where the scan stands: read at a None (the walk's state is taken then only, as a
        folder's folders seen grow with it)."""
        return self._count if self._walk is None else self._walk.to_json()

    def __iter__(self) -> Iterator[Optional[str]]:
        if osp.isfile(self.source):
            for count, rel in enumerate(iter_list(self.source, self.data_root), 1):
                if count <= (self._start or 0):
                    continue  # read before the stop
                yield rel
                if count % self.every == 0:
                    self._count = count
                    yield None
            return
        prefix = relative_to(self.source, self.data_root)
        prefix = '' if prefix == '.' else prefix + '/'
        self._walk = Walk(self.source) if self._start is None else Walk.from_json(self._start)
        for found in iter_image_entries(self.source, self._walk):
            yield None if found is None else prefix + found[1]
