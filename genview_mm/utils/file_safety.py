"""The one rule of every tool that writes a file: replace only what genview_mm wrote, or forced.

A tool about to write ``path`` asks :func:`check_replace` first. Nothing there, an empty file,
or a file that ``is_ours`` recognises as its own kind of output: go ahead. Anything else (a
user's list, image or checkpoint): :class:`ReplaceRefused`, naming what would be lost and the
flag that forces it. :func:`check_writable` (:func:`writable_problem`) tells, before any work,
that an output cannot be created where it is asked for. :func:`same_file` catches an output
that is the input under another name (another relative path, a symlink, a hard link);
:func:`same_picture` a view that is its source, or a copy of it.
:func:`check_outside_sources` keeps an output folder out of the folder its inputs come from.
Standard library only: the tools ask before torch loads.
"""
import filecmp
import os
import os.path as osp
import re
import tempfile
from typing import Callable, Optional, Sequence


class ReplaceRefused(ValueError):
    """Writing would replace or delete a file that genview_mm did not write."""


class NotWritable(ValueError):
    """An output file cannot be created where it is asked for."""


def writable_problem(folder: str) -> str:
    """Why this process cannot create a file in ``folder`` ('' if it can): the nearest existing
    folder (``folder``, or the first of its parents that exists: the missing ones are created
    when the file is written) must be a folder that takes a file. That is tried with a temporary
    file, removed at once, so read-only filesystems, ACLs and root are judged as the real write
    will be; nothing else is created, so a refused start leaves nothing behind."""
    existing = osp.abspath(folder)
    while not osp.exists(existing):
        if osp.islink(existing):  # the write's makedirs would stop at it
            return f'{existing} is a link to {os.readlink(existing)}, which does not exist'
        existing = osp.dirname(existing)
    if not osp.isdir(existing):
        return f'{existing} is a file, not a folder'
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix='.write-test-'):
            pass
    except OSError as exc:
        return f'no file can be created in {existing} ({exc.strerror or exc})'
    return ''


def check_writable(path: str) -> None:
    """Check, before any work, that this process can create the file ``path``
    (:func:`writable_problem` of its folder).

    Args:
        path (str): the file a tool is about to write.

    Raises:
        NotWritable: one line naming ``path`` and what is in the way.
    """
    if osp.isdir(path):
        raise NotWritable(f'{path} is a folder; give a file path')
    if path.endswith(('/', os.sep)):
        raise NotWritable(f"{path} ends with '/': give a file name")
    problem = writable_problem(osp.dirname(osp.abspath(path)))
    if problem:
        advice = 'choose a writable location' if problem.startswith('no file can be') else \
            'choose another path'
        raise NotWritable(f'cannot write {path}: {problem}; {advice}')


def same_file(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` name one existing file (same path, symlink or hard link).

    Args:
        a (str): a path.
        b (str): another path.

    Returns:
        bool: True if both exist and are the same file (False if either is missing).
    """
    try:
        return osp.samefile(a, b)
    except OSError:
        return False


def same_picture(view: str, source: str, view_stat: Optional[os.stat_result] = None,
                 source_stat: Optional[os.stat_result] = None) -> bool:
    """Whether ``view`` is the image ``source`` itself: one file (a link to it), or a
    byte-for-byte copy of it (a views folder copied from the sources, not linked: its pairs
    would be two views of the original). Sizes are compared before any byte (``*_stat``: the
    files' ``os.stat`` where the caller has it); False for a remote path or a missing file."""
    try:
        a = view_stat or os.stat(view)
        b = source_stat or os.stat(source)
        if osp.samestat(a, b):
            return True
        return a.st_size == b.st_size > 0 and filecmp.cmp(view, source, shallow=False)
    except (OSError, ValueError):  # missing, unreadable, a remote path, or NUL in a name
        return False


def holds_text(path: str, text: str) -> bool:
    """Whether the file ``path`` holds exactly ``text`` (False for a folder or unreadable): a
    rerun that would write the same file replaces nothing."""
    try:
        with open(path, encoding='utf-8', newline='') as f:
            return f.read() == text
    except (OSError, UnicodeDecodeError):
        return False


def check_replace(path: str, is_ours: Callable[[str], bool], what: str, flag: str,
                  force: bool = False, lost: Optional[str] = None) -> None:
    """Refuse to replace ``path`` unless it is missing, empty, ours, or ``force`` is set.

    Args:
        path (str): the file a tool is about to write.
        is_ours (Callable[[str], bool]): recognises the tool's own kind of file (a manifest,
            a PCA file, a contact sheet it wrote); it may raise, which counts as not ours.
        what (str): what the tool writes there, e.g. 'a GenView manifest'.
        flag (str): the option that forces the replacement, e.g. '--overwrite'.
        force (bool): that option was given. Defaults to False.
        lost (str, optional): what the existing file is, for the message. Defaults to a
            description from its size.

    Raises:
        ReplaceRefused: one line: the path, what would be lost and the flag.
    """
    if osp.isdir(path):  # even with force: writing would fail only at the end
        raise ReplaceRefused(f'{path} is a folder; give a file path to write {what} to')
    if osp.exists(path) and not osp.isfile(path):  # the rename would replace the node itself
        raise ReplaceRefused(f'{path} is not a regular file (a device, pipe or socket); give a '
                             f'file path to write {what} to')
    if force or not osp.lexists(path):
        return
    if not osp.exists(path):  # a link to nothing: writing would replace the link itself
        raise ReplaceRefused(f'{path} is a link to {os.readlink(path)}, which does not exist: '
                             f'writing would replace the link; pass {flag} to replace it, or '
                             'choose another path')
    size = os.path.getsize(path)
    if size == 0:
        return
    try:
        if is_ours(path):
            return
    except Exception:  # noqa: BLE001  (unreadable or foreign: not ours)
        pass
    lost = lost or f"its {size} bytes"
    raise ReplaceRefused(f'{path} exists and is not {what} (written by genview_mm): writing '
                         f'would replace it and {lost} would be lost; pass {flag} to replace '
                         'it, or choose another path')


def lies_under(path: str, folder: str) -> bool:
    """Whether ``path`` lies under ``folder`` (``/`` included), both spelled alike."""
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def check_outside_sources(out_dir: str, source: str, source_paths: Sequence[str]) -> None:
    """Raise ValueError when ``out_dir`` is inside the ``source`` folder or holds any of
    ``source_paths`` (absolute): a rerun would read outputs as sources, and deleting outputs
    could reach the sources."""
    outs = {osp.realpath(out_dir), osp.abspath(out_dir)}
    roots = {osp.realpath(source), osp.abspath(source)} if osp.isdir(source) else set()
    inside = [r for r in roots for o in outs if o == r or lies_under(o, r)]
    folders: dict = {}  # each image's folder as spelled and resolved (a list naming the
    for p in source_paths:  # images through a link to --out-dir): one realpath per folder
        folders.setdefault(osp.dirname(p), p)
    spelled = {f: p for d, p in folders.items() for f in (d, osp.realpath(d))}
    held = next((p for f, p in spelled.items() for o in outs if f == o or lies_under(f, o)),
                None)
    if inside or held:
        what = f'is inside the source folder {source!r}' if inside else \
            f'holds source images ({held!r})'
        raise ValueError(f'--out-dir {out_dir!r} {what}: pass an --out-dir outside the '
                         'source (views would be listed as sources on the next run)')


def config_dump_problem(work_dir: str, config: Optional[str]) -> str:
    """Why a run in ``work_dir`` must not start from ``config`` ('' if it may): MMEngine's config
    dump (``WORK_DIR/<config file name>``, flattened, the options baked in) would replace it,
    and it is a config of the user's own (it inherits: ``_base_``, ``read_base``). A run's own
    dump given to a rerun in its work dir (``tools/train.py WORK_DIR/CONFIG.py --resume``) is
    replaced by the new dump, as upstream does."""
    if not config or osp.realpath(osp.join(work_dir, osp.basename(config))) != \
            osp.realpath(config):
        return ''
    with open(config, encoding='utf-8', errors='replace') as f:
        if not re.search(r'^\s*_base_\s*=|\bread_base\(', f.read(), re.MULTILINE):
            return ''
    return (f'{work_dir} holds the config {config}: the run writes its config dump there under '
            'that name, which would replace it, flattened (its _base_ lost); pass --work-dir '
            'another folder, or keep the config elsewhere')
