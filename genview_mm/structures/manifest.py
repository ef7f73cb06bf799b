"""The views manifest: the contract between view generation and training.

One JSON object per line (JSONL), one :class:`ManifestRow` per (source image, variation):

================  =======  ===============================================================
field             type     meaning
================  =======  ===============================================================
``source``        str      absolute path of the source image
``key``           str      source path relative to the source root ('/'-separated): the
                           image's identity (seed, output name, matching; :func:`source_key`)
``variation``     int      variation index, 0..num_variations-1
``output``        str      generated image path relative to the manifest's folder; None if
                           failed
``noise_level``   int      unCLIP ``noise_level`` used (0..999); None if failed or unknown
``fg_ratio``      float    foreground ratio p in [0, 1]; None if failed or unknown
``seed``          int      per-image seed; None for imported views
``generator``     str      generator id (pipeline path/hub id, or ``import:<views root>``)
``clip_sim``      float    CLIP image-embedding similarity of source and view; None if unknown
``status``        str      'ok' or 'failed'
``reason``        str      why it failed ('' when ok): ``'transient: ...'`` or
                           ``'undecodable: ...'``
================  =======  ===============================================================

This module owns the row type, the format of a failed row's ``reason`` (:func:`failure_reason`;
what a rerun retries: :func:`should_retry`), its one reader (:func:`read_rows`,
:func:`read_manifest`) and one writer (:func:`write_manifest`, both through ``mmengine.fileio``,
so manifests on any registered storage backend work; local files are read and written directly,
without importing it) and the one rule matching a dataset sample to its rows
(:class:`RowMatcher`). It imports neither torch, diffusers nor transformers.
"""
import itertools
import json
import os
import os.path as osp
from contextlib import nullcontext
from dataclasses import dataclass, fields
from typing import Callable, Dict, Iterable, Iterator, List, Optional

from genview_mm.utils.atomic_write import atomic_write

MERGED_NAME = 'manifest.jsonl'


@dataclass
class ManifestRow:
    """One row of a manifest (see the module docstring for the fields)."""

    source: str
    key: str
    variation: int = 0
    output: Optional[str] = None
    noise_level: Optional[int] = None
    fg_ratio: Optional[float] = None
    seed: Optional[int] = None
    generator: str = ''
    clip_sim: Optional[float] = None
    status: str = 'ok'
    reason: str = ''

    @property
    def id(self) -> tuple:
        """(key, variation): a row's identity."""
        return self.key, int(self.variation)

    @property
    def ok(self) -> bool:
        return self.status == 'ok'

    def to_line(self) -> str:
        """The JSON line of this row (newline included): the only serialisation."""
        return json.dumps(self.as_dict()) + '\n'

    def as_dict(self) -> Dict:
        """The fields in file order (no deep copy, unlike ``dataclasses.asdict``)."""
        return {name: getattr(self, name) for name in FIELDS}

    @classmethod
    def from_dict(cls, data: Dict) -> 'ManifestRow':
        """A row from a parsed line (unknown keys ignored, absent ones at their default)."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


FIELDS = tuple(f.name for f in fields(ManifestRow))


def _is_remote(path: str, backend_args: Optional[dict]) -> bool:
    return '://' in path or (backend_args or {}).get('backend', 'local') != 'local'


def manifest_file(path: str, backend_args: Optional[dict] = None) -> str:
    """``path``, or ``path/manifest.jsonl`` when ``path`` is a local folder."""
    if not _is_remote(path, backend_args) and osp.isdir(path):
        return osp.join(path, MERGED_NAME)
    return path


def read_rows(path: str, backend_args: Optional[dict] = None) -> Iterator[ManifestRow]:
    """The rows of one manifest file, one at a time; a last line cut short by a kill is skipped.

    Raises:
        FileNotFoundError: no such manifest (the message says how to make one).
        ValueError: a line other than the last is not valid JSON (the file is corrupt).
    """
    path = manifest_file(path, backend_args)
    if not _is_remote(path, backend_args) and not osp.isfile(path):
        raise FileNotFoundError(
            f'Manifest not found: {path!r}. Generate views with tools/generate_views.py (it '
            'merges when the last shard is done) or merge with tools/merge_manifests.py OUT_DIR.')
    with _local_copy(path, backend_args) as local:
        with open(local, 'r', encoding='utf-8') as f:
            previous = None  # hold one line back: only the last may be cut short
            for number, line in enumerate(f, 1):
                if previous is not None:
                    yield _parse(previous, path, number - 1, last=False)
                previous = line if line.strip() else None
            if previous is not None:
                row = _parse(previous, path, number, last=not previous.endswith('\n'))
                if row is not None:
                    yield row


def _local_copy(path: str, backend_args: Optional[dict]):
    """A local path to read ``path`` from (``mmengine.fileio.get_local_path`` for another
    backend, imported only then)."""
    if not _is_remote(path, backend_args):
        return nullcontext(path)
    import mmengine.fileio as fileio
    return fileio.get_local_path(path, backend_args=backend_args)


def _parse(line: str, path: str, number: int, last: bool) -> Optional[ManifestRow]:
    try:
        return ManifestRow.from_dict(json.loads(line))
    except json.JSONDecodeError as exc:
        if last:
            return None
        raise ValueError(f'{path}:{number}: corrupt manifest line ({exc})') from exc


def outside_views_folder(output: str) -> Optional[str]:
    """``'absolute'`` or ``'climbs'`` when a row's ``output`` is absolute or climbs out of the
    manifest's folder (``..``, as tools/import_views.py writes for views imported in place),
    else None."""
    path = output.replace('\\', '/')
    if osp.isabs(path) or '://' in path:
        return 'absolute'
    return 'climbs' if osp.normpath(path).split('/')[0] == '..' else None


def output_resolver(manifest: str, backend_args: Optional[dict] = None) -> Callable[[str], str]:
    """A function from a row's relative ``output`` to its absolute location (joined to the
    manifest's folder; with ``mmengine.fileio.join_path`` on another backend)."""
    manifest = manifest_file(manifest, backend_args)
    if _is_remote(manifest, backend_args):
        import mmengine.fileio as fileio
        root = manifest.rsplit('/', 1)[0]
        return lambda out: fileio.join_path(root, out, backend_args=backend_args)
    root = osp.dirname(osp.abspath(manifest))
    return lambda out: osp.normpath(osp.join(root, out))


def read_manifest(path: str, status: Optional[str] = 'ok', absolute: bool = True,
                  backend_args: Optional[dict] = None) -> List[Dict]:
    """The rows of a manifest as dicts (a file, or a folder holding ``manifest.jsonl``).

    Args:
        path (str): manifest file or generation output folder.
        status (str, optional): keep only rows with this status; None keeps all.
            Defaults to 'ok'.
        absolute (bool): turn ``output`` into an absolute path. Defaults to True.
        backend_args (dict, optional): ``mmengine.fileio`` backend. Defaults to None (local).
    """
    rows, resolve = [], output_resolver(path, backend_args)
    for row in read_rows(path, backend_args):
        if status is not None and row.status != status:
            continue
        if absolute and row.output:
            row.output = resolve(row.output)
        rows.append(row.as_dict())
    return rows


def write_manifest(path: str, rows: Iterable[ManifestRow], backend_args: Optional[dict] = None,
                   keep_empty: bool = True) -> int:
    """Write ``rows`` (any iterable: they are streamed) to ``path`` as a whole: a local file
    goes to a temporary name of this process first and is renamed into place (readers never
    see half a file; a full disk leaves no temporary file); another backend gets the text in
    one ``put_text``.

    Args:
        path (str): the manifest file.
        rows (Iterable[ManifestRow]): the rows, in file order.
        backend_args (dict, optional): ``mmengine.fileio`` backend. Defaults to None (local).
        keep_empty (bool): write a manifest without rows too; False leaves ``path`` as it
            was. Defaults to True.

    Returns:
        int: the number of rows written.
    """
    if _is_remote(path, backend_args):
        import mmengine.fileio as fileio
        lines = [row.to_line() for row in rows]
        if lines or keep_empty:
            fileio.put_text(''.join(lines), path, backend_args=backend_args)
        return len(lines)
    rows = iter(rows)
    first = next(rows, None)
    if first is None and not keep_empty:
        return 0
    count = 0
    with atomic_write(path, newline='\n') as f:
        for row in ([] if first is None else itertools.chain([first], rows)):
            f.write(row.to_line())
            count += 1
    return count


def newest_rows(rows: Iterable[ManifestRow]) -> Dict[tuple, ManifestRow]:
    """One row per (key, variation), rows given oldest first: an 'ok' row beats a 'failed' one,
    a later row one of the same status (a rerun that redid a lost output)."""
    best: Dict[tuple, ManifestRow] = {}
    for row in rows:
        old = best.get(row.id)
        if old is None or row.ok or not old.ok:
            best[row.id] = row
    return best


TRANSIENT, UNDECODABLE = 'transient', 'undecodable'


def failure_reason(kind: str, cause: str, exc: BaseException) -> str:
    """A failed row's ``reason``: ``'<kind>: <cause>: <ExceptionType>: <message>'``; kind
    ``'undecodable'`` (read but not an image: kept) or ``'transient'`` (anything that can go
    away: retried)."""
    if kind not in (TRANSIENT, UNDECODABLE):
        raise ValueError(f'failure kind must be {TRANSIENT!r} or {UNDECODABLE!r}, got {kind!r}')
    return f'{kind}: {cause}: {type(exc).__name__}: {exc}'


def failure_kind(reason: Optional[str]) -> str:
    """The kind a reason starts with; reasons without a known prefix are transient."""
    head = (reason or '').split(':', 1)[0].strip()
    return UNDECODABLE if head == UNDECODABLE else TRANSIENT


def should_retry(reason: Optional[str], retry_failed: bool = False) -> bool:
    """Whether a rerun tries a failed image again: transient always, undecodable on request."""
    return retry_failed or failure_kind(reason) == TRANSIENT


def failure_cause(reason: Optional[str]) -> str:
    """The group of a reason: ``'<kind>: <cause>'`` (the first field of an older one)."""
    fields = [f.strip() for f in (reason or 'unknown').split(':')]
    if fields[0] in (TRANSIENT, UNDECODABLE) and len(fields) > 1:
        return f'{fields[0]}: {fields[1]}'
    return fields[0] or 'unknown'


def _norm(path: str) -> str:
    return osp.normpath(path).replace('\\', '/')


def source_key(path: str, root: Optional[str]) -> str:
    """The key of a source image: its path relative to ``root``, '/'-separated (the absolute
    path without its leading slash when it is not under ``root``)."""
    path = osp.abspath(path)
    rel = osp.relpath(path, root) if root else path
    if rel.startswith('..'):
        rel = path.lstrip('/\\')
    return rel.replace(os.sep, '/')


class RowMatcher:
    """The rule that finds a dataset sample's key among manifest rows.

    A sample's ``img_path`` is matched, in order, against the rows' absolute ``source``; its
    :func:`source_key` under ``source_root`` (when given) against the rows' ``key``; and the
    longest trailing part of the path that equals a ``key`` (so ``/data/imagenet/train/n01/x``
    finds key ``train/n01/x`` or ``n01/x`` wherever the data root is mounted).
    """

    def __init__(self, source_root: Optional[str] = None) -> None:
        self.source_root = _norm(osp.abspath(source_root)) if source_root else None
        self.keys: Dict[str, None] = {}
        self.by_source: Dict[str, str] = {}
        self.max_depth = 0

    def add(self, row: ManifestRow) -> str:
        """Register a row; returns its normalised key."""
        key = _norm(row.key)
        if key not in self.keys:
            self.keys[key] = None
            self.max_depth = max(self.max_depth, key.count('/') + 1)
        self.by_source[_norm(row.source)] = key
        return key

    def match(self, img_path: str) -> Optional[str]:
        """The key ``img_path`` belongs to, or None."""
        path = _norm(osp.abspath(img_path))
        key = self.by_source.get(path)
        if key is not None:
            return key
        if self.source_root and path.startswith(self.source_root + '/'):
            key = path[len(self.source_root) + 1:]
            return key if key in self.keys else None
        parts = path.split('/')
        for depth in range(min(self.max_depth, len(parts)), 0, -1):
            key = '/'.join(parts[-depth:])
            if key in self.keys:
                return key
        return None
