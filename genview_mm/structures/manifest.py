"""The views manifest: the contract between view generation and training.

One JSON object per line (JSONL), one :class:`ManifestRow` per (source image, variation):

================  =======  ===============================================================
field             type     meaning
================  =======  ===============================================================
``source``        str      absolute path of the source image
``key``           str      source path relative to the source root ('/'-separated): the
                           image's identity (seed, output name, matching; :func:`source_key`)
``variation``     int      variation index, 0..num_variations-1
``output``        str      generated image path relative to the manifest's folder (that of
                           the file a symlink names); None if failed
``noise_level``   int      unCLIP ``noise_level`` used (0..999); None if failed or unknown
``fg_ratio``      float    foreground ratio p in [0, 1]; None if failed or unknown
``seed``          int      per-image seed; None for imported views
``generator``     str      generator id (pipeline path/hub id, or ``import:<views root>``)
``clip_sim``      float    CLIP image-embedding similarity of source and view; None if unknown
``status``        str      'ok' or 'failed'
``reason``        str      why it failed ('' when ok): ``'transient: ...'`` or
                           ``'undecodable: ...'``
``attempt``       int      how many times generation tried this view (1 for the first; a
                           redo or retry counts up); 0 if unknown (imported, older rows)
================  =======  ===============================================================

This module owns the row type, the format of a failed row's ``reason`` (:func:`failure_reason`;
what a rerun retries: :func:`should_retry`), its one reader (:func:`read_rows`,
:func:`read_manifest`) and one writer (:func:`write_manifest`, both through ``mmengine.fileio``,
so manifests on any registered storage backend work; local files are read and written directly,
without importing it; rows of work in progress are appended by :class:`ManifestJournal`), the
one rule matching a dataset sample to its rows (:class:`RowMatcher`),
and the cheap look the preflight takes at a manifest with both (:func:`probe_manifest`). It
imports neither torch, diffusers nor transformers.
"""
import filecmp
import gc
import itertools
import json
import os
import os.path as osp
import re
from collections import Counter
from contextlib import nullcontext, suppress
from dataclasses import dataclass, fields
from typing import (
    AbstractSet,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
)

from genview_mm.utils.atomic_write import atomic_write
from genview_mm.utils.file_safety import same_file, same_picture

MERGED_NAME = 'manifest.jsonl'
MAX_NOISE_LEVEL = 999  # StableUnCLIP's image-embedding noising scheduler has 1000 steps
_CHUNK = 1 << 22  # characters decoded at once by read_rows
#: a row's key, read from its line without decoding it (see ``names`` of read_rows)
_KEY = re.compile(r'"key":\s*"([^"\\]*)"')


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
    attempt: int = 0

    @property
    def id(self) -> tuple:
        """(key, variation): a row's identity."""
        return self.key, int(self.variation)

    @property
    def ok(self) -> bool:
        return self.status == 'ok'

    def below(self, min_clip_sim: Optional[float]) -> bool:
        """Whether ``min_clip_sim`` filters this row's view out (the one rule: a known
        ``clip_sim`` below it; rows without one are kept)."""
        return min_clip_sim is not None and self.clip_sim is not None and \
            self.clip_sim < min_clip_sim

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
_REQUIRED = frozenset(('source', 'key'))  # the fields without a default


def is_remote(path: str, backend_args: Optional[dict] = None) -> bool:
    """Whether ``path`` is read through another ``mmengine.fileio`` backend than local files."""
    return '://' in path or (backend_args or {}).get('backend', 'local') != 'local'


def manifest_file(path: str, backend_args: Optional[dict] = None) -> str:
    """``path``, or ``path/manifest.jsonl`` when ``path`` is a local folder."""
    if not is_remote(path, backend_args) and osp.isdir(path):
        return osp.join(path, MERGED_NAME)
    return path


def read_rows(path: str, backend_args: Optional[dict] = None,
              names: Optional[AbstractSet[str]] = None,
              counts: Optional[Counter] = None, journal: bool = False) -> Iterator[ManifestRow]:
    """The rows of one manifest file, one at a time; a ``journal``'s last line cut short by a
    kill (no line end) is skipped, that of any other file (no line end, no closing brace: a
    truncated copy) is an error.

    Lines are decoded a chunk at a time (one ``json.loads`` per chunk; line by line only to name
    a bad one), so 1.28M rows stream in seconds.

    Args:
        path (str): manifest file, or a local folder holding ``manifest.jsonl``.
        backend_args (dict, optional): ``mmengine.fileio`` backend. Defaults to None (local).
        names (AbstractSet[str], optional): when given, a line whose ``key`` (read without
            decoding the line) ends in a file name not in ``names`` may be skipped undecoded:
            a cheap look at the rows of a few images; a line that does not end in ``}`` is
            decoded all the same, so a damaged one is named. Defaults to None (every row).
        counts (Counter, optional): ``counts['rows']`` is increased by the rows read, skipped
            ones included. Defaults to None.
        journal (bool): the file is a :class:`ManifestJournal`, whose rows all end their line:
            one without is cut short even where it ends in ``}`` (inside a failure reason).
            Defaults to False.

    Raises:
        FileNotFoundError: no such manifest (the message says how to make one).
        ValueError: a decoded line other than the last is not valid JSON (the file is corrupt).
    """
    path = manifest_file(path, backend_args)
    if not is_remote(path, backend_args) and not osp.isfile(path):
        raise FileNotFoundError(
            f'Manifest not found: {path!r}. Generate views with tools/generate_views.py (it '
            'merges when the last shard is done) or merge with tools/merge_manifests.py OUT_DIR; '
            'for views made elsewhere (the released ones), write one with '
            'tools/import_views.py VIEWS_ROOT.')
    counts = Counter() if counts is None else counts
    try:
        yield from _read(path, backend_args, names, counts, journal)
    except UnicodeDecodeError as exc:  # a ValueError that named no file
        raise ValueError(f'{path}: not UTF-8 text, so not a manifest ({exc})') from None
    except OSError as exc:  # a read's error (EIO, a failing disk) names no file: this one
        if exc.filename is None:
            exc.filename = path
        raise


def _read(path: str, backend_args: Optional[dict], names: Optional[AbstractSet[str]],
          counts: Counter, journal: bool = False) -> Iterator[ManifestRow]:
    """:func:`read_rows` of a manifest file's path."""
    with _local_copy(path, backend_args) as local:
        # utf-8-sig: a byte-order mark (a manifest saved by a Windows editor) is not a row's
        with open(local, 'r', encoding='utf-8-sig') as f:
            held: List[Tuple[int, str]] = []  # the last line so far: only it may be cut short
            number = 0
            while True:
                lines = f.readlines(_CHUNK)
                if not lines:
                    break
                texts = [line for line in lines if line.strip()]
                if texts:
                    counts['rows'] += len(texts)
                    yield from _decode(held, texts[:-1], lines, number + 1, path, names)
                    last = len(lines) - next(i for i, x in enumerate(reversed(lines))
                                             if x.strip())
                    held = [(number + last, texts[-1])]
                number += len(lines)
            for n, line in held:  # cut short: no line end, and no '}' that ends an object
                # (a complete line that does not decode is damaged, named as any other); only
                # a journal's is skipped: every other file is written whole (atomic_write), so
                # one cut short is a truncated copy, whose lost rows would go unnoticed
                cut = not (line.endswith('\n') or (not journal and line.rstrip().endswith('}')))
                row = _parse(line, path, n, cut=cut, journal=journal)
                if row is None:
                    counts['rows'] -= 1
                else:
                    yield row


def _wanted(line: str, names: Optional[AbstractSet[str]]) -> bool:
    """Whether a line is to be decoded (see ``names`` of :func:`read_rows`): also one that does
    not end its object (cut short by a kill, or joined to part of another), to name it."""
    if names is None or not line.rstrip().endswith('}'):
        return True
    key = _KEY.search(line)
    return key is None or key.group(1).rsplit('/', 1)[-1] in names


def _decode(held: List[Tuple[int, str]], texts: List[str], lines: List[str], first: int,
            path: str, names: Optional[AbstractSet[str]]) -> List[ManifestRow]:
    """The rows of the line held back from the last chunk and of ``texts`` (the non-blank
    ``lines`` but the last, ``lines[0]`` being line ``first``) that :func:`_wanted` keeps, in
    one ``json.loads``; line by line, to name the bad one, when that fails or a line is not a
    row.

    The garbage collector is paused meanwhile: the new rows hold no cycles, and collections
    triggered by their allocation would cost more than the decoding.
    """
    batch = [line for _, line in held] + [x for x in texts if _wanted(x, names)]
    paused = gc.isenabled()
    gc.disable()
    try:
        try:
            data = json.loads('[' + ','.join(batch) + ']')
        except json.JSONDecodeError:
            data = None
        rows = None if data is None or len(data) != len(batch) else _rows(data)
        if rows is None:
            numbered = held + [(n, x) for n, x in enumerate(lines, first) if x.strip()]
            return [_parse(x, path, n) for n, x in numbered[:len(held) + len(texts)]
                    if _wanted(x, names)]
        return rows
    finally:
        if paused:
            gc.enable()


def _rows(data: list) -> Optional[List[ManifestRow]]:
    """The rows of decoded lines; None if one is not a row (not an object, or no source/key)."""
    rows = []
    for d in data:
        if not isinstance(d, dict):
            return None
        try:
            rows.append(ManifestRow(**d))
        except TypeError:  # unknown or absent fields
            if not _REQUIRED <= d.keys():
                return None
            rows.append(ManifestRow.from_dict(d))
        if not _typed(rows[-1]):
            return None
    return rows


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value) -> bool:
    return _is_int(value) or isinstance(value, float)


#: field -> (what it must be, check); None is allowed where the field is optional
_TYPES = {
    'source': ('a string', lambda v: isinstance(v, str)),
    'output': ('a string or null', lambda v: v is None or isinstance(v, str)),
    # a level or ratio out of range was kept, the level reported as the view's (a NaN clip_sim
    # is read: earlier generators wrote it, and it counts as unknown, as null)
    'noise_level': (f'an integer in 0..{MAX_NOISE_LEVEL} or null',
                    lambda v: v is None or (_is_int(v) and 0 <= v <= MAX_NOISE_LEVEL)),
    'fg_ratio': ('a number in [0, 1] or null', lambda v: v is None or (_is_num(v) and 0 <= v <= 1)),
    'clip_sim': ('a number or null', lambda v: v is None or _is_num(v)),
    'seed': ('an integer or null', lambda v: v is None or _is_int(v)),
    # any other status ('OK', 'done') was read as a failure: its view silently unused
    'status': ("'ok' or 'failed'", lambda v: isinstance(v, str) and v in _STATUSES),
    'attempt': ('an integer', _is_int),
    # a number here failed later, in the merge or a rerun's retry rule (an AttributeError)
    'reason': ('a string or null', lambda v: v is None or isinstance(v, str)),
    'generator': ('a string or null', lambda v: v is None or isinstance(v, str)),
}


def _type_error(row: ManifestRow) -> Optional[str]:
    """What is wrong with a row's field types (a damaged or edited line: ``"variation": null``
    or ``"noise_level": "abc"`` failed later, in int() or a comparison, naming no file); None
    when nothing is."""
    if not (isinstance(row.key, str) and _is_int(row.variation)):
        return (f'key must be a string, variation an integer: got {row.key!r}, '
                f'{row.variation!r}')
    if row.variation < 0:
        return f'variation must be >= 0: got {row.variation}'
    for field, (kind, ok) in _TYPES.items():
        if not ok(getattr(row, field)):
            return f'{field} must be {kind}: got {getattr(row, field)!r}'
    if row.status == 'ok' and not row.output:  # it counted as a view that no file backs
        return f"an ok row needs an output (its view's path): got {row.output!r}"
    return None


_STR, _INT, _NUM = (str, ), (int, type(None)), (int, float, type(None))
_TEXT = (str, type(None))
_STATUSES = ('ok', 'failed')


def _typed(row: ManifestRow) -> bool:
    """Whether every field of a row has its type (:func:`_type_error` says which has not;
    this is its fast form, run on every row: 0.3 us instead of 1.2)."""
    return (type(row.key) in _STR and type(row.variation) is int and row.variation >= 0
            and type(row.source) in _STR
            and type(row.status) in _STR and row.status in _STATUSES
            and (row.output is None or type(row.output) in _STR)
            and (row.output or row.status != 'ok') and type(row.noise_level) in _INT
            and (row.noise_level is None or 0 <= row.noise_level <= MAX_NOISE_LEVEL)
            and type(row.seed) in _INT and type(row.attempt) is int
            and type(row.fg_ratio) in _NUM and (row.fg_ratio is None or 0 <= row.fg_ratio <= 1)
            and type(row.clip_sim) in _NUM
            and type(row.reason) in _TEXT and type(row.generator) in _TEXT)


def _local_copy(path: str, backend_args: Optional[dict]):
    """A local path to read ``path`` from (``mmengine.fileio.get_local_path`` for another
    backend, imported only then)."""
    if not is_remote(path, backend_args):
        return nullcontext(path)
    import mmengine.fileio as fileio
    return fileio.get_local_path(path, backend_args=backend_args)


class CutShort(ValueError):
    """A file's last line cut short (a truncated copy): ``what`` says so, the message adds
    the general fix (a reader that knows a better one says ``what`` with its own)."""

    def __init__(self, what: str) -> None:
        super().__init__(f'{what}: copy it again, or make it again')
        self.what = what


def _parse(line: str, path: str, number: int, cut: bool = False,
           journal: bool = False) -> Optional[ManifestRow]:
    """The row of one line; ``cut``: the file's last line, cut short (None where it does not
    decode and the file is a ``journal``: a kill's half line; else :class:`CutShort`)."""
    try:
        data = json.loads(line)
        if not isinstance(data, dict):
            raise json.JSONDecodeError('not a JSON object', line, 0)
    except json.JSONDecodeError as exc:
        if cut and journal:
            return None
        if cut:
            raise CutShort(f'{path}:{number}: the last line is cut short ({exc}): the file is '
                           'truncated (a copy or download cut off?), so rows may be lost') from exc
        raise ValueError(f'{path}:{number}: corrupt manifest line ({exc})') from exc
    if not _REQUIRED <= data.keys():
        raise ValueError(f'{path}:{number}: not a manifest row (needs source, key)')
    row = ManifestRow.from_dict(data)
    if not _typed(row):
        raise ValueError(f'{path}:{number}: not a manifest row ({_type_error(row)})')
    return row


def outside_views_folder(output: str) -> Optional[str]:
    """``'absolute'`` or ``'climbs'`` when a row's ``output`` is absolute or climbs out of the
    manifest's folder (``..``, as tools/import_views.py writes for views imported in place),
    else None."""
    path = output.replace('\\', '/')
    if osp.isabs(path) or '://' in path:
        return 'absolute'
    return 'climbs' if osp.normpath(path).split('/')[0] == '..' else None


def views_root(manifest: str, backend_args: Optional[dict] = None) -> str:
    """The folder a manifest's relative ``output`` paths start from: the real folder of the
    file, links resolved (of the file a symlink to the manifest file names: a manifest linked
    into another folder still finds its views; and an output that climbs, ``..``, means the same
    folder whichever path reaches the manifest, as the writers spell it from the real folders),
    its prefix on another backend."""
    manifest = manifest_file(manifest, backend_args)
    if is_remote(manifest, backend_args):
        return manifest.rsplit('/', 1)[0]
    return osp.dirname(osp.realpath(manifest))


def output_resolver(manifest: str, backend_args: Optional[dict] = None) -> Callable[[str], str]:
    """A function from a row's relative ``output`` to its absolute location (joined to
    :func:`views_root`; with ``mmengine.fileio.join_path`` on another backend)."""
    root = views_root(manifest, backend_args)
    if is_remote(manifest_file(manifest, backend_args), backend_args):
        import mmengine.fileio as fileio
        return lambda out: fileio.join_path(root, out, backend_args=backend_args)
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
    if is_remote(path, backend_args):
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


class ManifestJournal:
    """Rows appended to a local manifest as they come (a job's record of work in progress):
    written out by :meth:`flush` (a killed process loses the rows since), fsynced when closed;
    a half line left by a kill is cut off when the journal is reopened."""

    def __init__(self, path: str) -> None:
        if osp.isfile(path):
            with open(path, 'rb+') as f:
                data = f.read()
                if data and not data.endswith(b'\n'):
                    f.truncate(data.rfind(b'\n') + 1)
        self._f = open(path, 'a', encoding='utf-8')

    def write(self, row: ManifestRow) -> None:
        self._f.write(row.to_line())

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        """Write out, fsync and close; the file is closed also when writing out fails (a
        full disk), and that error is raised."""
        if not self._f.closed:
            try:
                self._f.flush()
                os.fsync(self._f.fileno())
            finally:
                with suppress(OSError):  # its own flush fails the same way
                    self._f.close()


def newest_rows(rows: Iterable[ManifestRow]) -> Dict[tuple, ManifestRow]:
    """One row per (key, variation), rows given oldest first: a later ``attempt`` beats an
    earlier one; of one attempt (rows without one: 0), an 'ok' row beats a 'failed' one and a
    later row one of the same status."""
    best: Dict[tuple, ManifestRow] = {}
    for row in rows:
        old = best.get(row.id)
        if old is None or row.attempt > old.attempt or (row.attempt == old.attempt and
                                                        (row.ok or not old.ok)):
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
    if not root or rel == '..' or rel.startswith('..' + os.sep):  # not '..hidden/x.jpg'
        rel = path.lstrip('/\\')
    return rel.replace(os.sep, '/')


class RowMatcher:
    """The rule that finds a dataset sample's key among manifest rows.

    A sample's ``img_path`` is matched, in order, against the rows' absolute ``source``; then,
    with ``source_root``, its :func:`source_key` under it against the rows' ``key`` (an image
    outside ``source_root`` has no key: the keys are relative to that folder); without it, the
    longest trailing part of the path that equals a ``key`` (so ``/data/imagenet/train/n01/x``
    finds key ``train/n01/x`` or ``n01/x`` wherever the data root is mounted).
    """

    def __init__(self, source_root: Optional[str] = None) -> None:
        self.source_root = _norm(osp.abspath(source_root)) if source_root else None
        #: the folder it is a link to, if it is one (or the data is reached through one)
        self.real_root = _norm(osp.realpath(source_root)).rstrip('/') if source_root else None
        self._real_dirs: Dict[str, str] = {}  # folder -> its real path (one call per folder)
        self.keys: Dict[str, str] = {}  #: key -> the source id of its first row
        self.by_source: Dict[str, str] = {}
        self.max_depth = 0

    def add(self, row: ManifestRow, source_id: Optional[str] = None) -> str:
        """Register a row (``source_id``: its :meth:`source_id`, if known); returns its
        normalised key."""
        key, source = self.key_id(row.key), source_id or self.source_id(row.source)
        if key not in self.keys:
            self.keys[key] = source
            self.max_depth = max(self.max_depth, key.count('/') + 1)
        self.by_source[source] = key
        return key

    @staticmethod
    def key_id(key: str) -> str:
        """A row's ``key`` as the matcher stores it."""
        return _norm(key)

    @staticmethod
    def source_id(path: str) -> str:
        """A row's ``source`` or a sample's ``img_path`` as the matcher compares them."""
        return _norm(path if osp.isabs(path) else osp.abspath(path))

    def candidates(self, img_path: str, depth: Optional[int] = None) -> List[str]:
        """The keys ``img_path`` may have, in the order :meth:`match` tries them (its absolute
        path aside): with ``source_root``, its key under it, links resolved on either side
        when it is not there as spelt (none outside it: a trailing part would pair an image of
        another folder with the view of one that has its file name), else its trailing parts,
        longest first (at most ``depth`` parts)."""
        path = _norm(osp.abspath(img_path))
        if self.source_root:
            root = self.source_root.rstrip('/')
            if path.startswith(root + '/'):
                return [path[len(root) + 1:]]
            key = self._key_through_links(path)  # a data root or source_root that is a link
            return [key] if key else []
        parts = path.split('/')
        top = len(parts) if depth is None else min(depth, len(parts))
        return ['/'.join(parts[-d:]) for d in range(top, 0, -1)]

    def _key_through_links(self, path: str) -> Optional[str]:
        """The key of ``path`` under ``source_root`` with the links of its folders resolved:
        the rest as spelt under the first folder, from the top, that is the root (a data root
        that is a link to the mount source_root names, or the reverse: the generation tool's
        key, links inside the root kept as spelt), else under the nearest folder that lies in
        the root (a class folder linked in from outside it); a linked file keeps its name. Each
        folder's real path is asked once."""
        parts, root = path.split('/'), self.real_root
        reals = []
        for i in range(1, len(parts)):
            folder = '/'.join(parts[:i]) or '/'
            real = self._real_dirs.get(folder)
            if real is None:
                real = self._real_dirs[folder] = _norm(osp.realpath(folder)).rstrip('/')
            if real == root:
                return '/'.join(parts[i:])
            reals.append(real)
        for i in range(len(reals), 0, -1):
            if reals[i - 1].startswith(root + '/'):
                return '/'.join([reals[i - 1][len(root) + 1:]] + parts[i:])
        return None

    def match(self, img_path: str) -> Optional[str]:
        """The key ``img_path`` belongs to, or None."""
        key = self.by_source.get(self.source_id(img_path))
        if key is not None:
            return key
        return next((k for k in self.candidates(img_path, self.max_depth) if k in self.keys),
                    None)

    def local_sources(self, img_path: str,
                      sources: Optional[Sequence[str]] = None) -> List[str]:
        """The sources of the rows ``img_path`` matches by key alone that are local files
        there (what :meth:`other_picture` compares it with); none where it matches by its own
        path, matches nothing or is remote, or the sources are not here (the released views
        name the authors' paths). ``sources``: those of the key's usable rows (default: its
        first row's; a key's rows of one source share it)."""
        key = None if '://' in img_path or self.source_id(img_path) in self.by_source else \
            self.match(img_path)
        return [] if key is None else [s for s in ([self.keys[key]] if sources is None else
                                                   sources) if osp.isfile(s)]

    @staticmethod
    def other_picture(img_path: str, local: Sequence[str]) -> Optional[str]:
        """One of ``local`` (the image's :meth:`local_sources`) that is another picture:
        neither ``img_path`` nor a byte-identical copy of it (a manifest made for another
        dataset or folder with the same file names: views of other pictures; or an image
        re-saved since); else None."""
        for source in local:
            if not same_file(source, img_path):
                try:
                    if not filecmp.cmp(source, img_path, shallow=False):
                        return source
                except OSError:  # the image unreadable: training's loader says so
                    pass
        return None


class ManifestProbe(NamedTuple):
    """What :func:`probe_manifest` found.

    Attributes:
        path (str): the manifest file read.
        rows (int): rows of the manifest.
        hits (int): sampled images that have an ``ok`` row (by :class:`RowMatcher`).
        example (str, optional): the key of a row.
        outputs (List[str]): where the views of the sampled images' ``ok`` rows are (of the
            first rows when nothing was sampled), resolved as training resolves them.
        missing (List[str]): those of ``outputs`` that do not exist or are empty.
        empty (List[str]): those of ``missing`` that are there but empty (0 bytes: written
            on a full disk).
        filtered (int): ``ok`` rows of the sampled images (of every image when nothing was
            sampled) whose view ``min_clip_sim`` filters out.
        filtered_hits (int): sampled images without a view only because of that.
        failed_hits (int): sampled images without an ``ok`` row that have a failed one.
        themselves (List[str]): those of ``outputs`` that are their row's source image, or a
            copy of it (local files; the views and source folders swapped at import, or a
            views folder copied from the sources: plain SSL).
        others (List[Tuple[str, str]]): ``(sampled image, its rows' source)`` where that source
            is another picture (:meth:`RowMatcher.other_picture`: a manifest of another dataset
            with the same file names).
        compared (int): sampled images with :meth:`RowMatcher.local_sources` (compared).
    """
    path: str
    rows: int
    hits: int
    example: Optional[str]
    outputs: List[str]
    missing: List[str]
    empty: List[str]
    filtered: int = 0
    filtered_hits: int = 0
    failed_hits: int = 0
    themselves: Sequence[str] = ()
    others: Sequence[Tuple[str, str]] = ()
    compared: int = 0


def probe_manifest(path: str, sample_paths: Sequence[str], backend_args: Optional[dict] = None,
                   source_root: Optional[str] = None, first: int = 100,
                   min_clip_sim: Optional[float] = None) -> ManifestProbe:
    """Look at a manifest as training would, cheaply: one streamed read that decodes only the
    rows of the sampled images (:func:`read_rows` with ``names``), matched by
    :class:`RowMatcher`, and whether their views exist (through ``mmengine.fileio`` on
    another backend).

    Args:
        path (str): manifest file or folder (on any ``mmengine.fileio`` backend).
        sample_paths (Sequence[str]): dataset images to look up; none reads every row and
            looks at the views of the ``first`` ones.
        backend_args (dict, optional): ``mmengine.fileio`` backend. Defaults to None (local).
        source_root (str, optional): the pair transform's ``source_root``. Defaults to None.
        first (int): rows whose views are looked at when nothing is sampled. Defaults to 100.
        min_clip_sim (float, optional): the pair transform's ``min_clip_sim``: rows it filters
            out give no view, as in training. Defaults to None.

    Raises:
        FileNotFoundError: no manifest there.
        ValueError: it is corrupt.
    """
    path = manifest_file(path, backend_args)
    matcher, counts = RowMatcher(source_root), Counter()
    wanted = {c for p in sample_paths for c in matcher.candidates(p)}
    sources = {_norm(osp.abspath(p)) for p in sample_paths}
    names = {c.rsplit('/', 1)[-1] for c in wanted | sources} if sample_paths else None
    example, picked, filtered, failed = None, [], RowMatcher(source_root), RowMatcher(source_root)
    every = RowMatcher(source_root)  # the sampled images' rows, as training matches them
    for row in read_rows(path, backend_args, names, counts):
        example = example or row.key
        if sample_paths and _norm(row.key) not in wanted and _norm(row.source) not in sources:
            continue
        if sample_paths:
            every.add(row)
        if not row.ok:
            if sample_paths:
                failed.add(row)
            continue
        if row.below(min_clip_sim):
            counts['filtered'] += 1
            if sample_paths:
                filtered.add(row)
        elif sample_paths or len(picked) < first:
            picked.append((matcher.add(row), row.output, row.source))
    # an image whose own path is the source of rows that give no view (failed, filtered) has
    # none, whatever rows of other sources share its key (as ManifestIndex: its own rows)
    given_none = {**failed.by_source, **filtered.by_source}
    # the key of every row, failed and filtered ones too, as ManifestIndex matches: an image
    # whose own key gave no view is not matched by a shorter trailing key (another image's)

    def usable_key(p: str) -> Optional[str]:
        key = every.match(p)
        return key if key in matcher.keys else None
    matched = [None if matcher.source_id(p) in given_none and
               matcher.source_id(p) not in matcher.by_source else usable_key(p)
               for p in sample_paths]
    filtered_hits, failed_hits = (sum(key is None and m.match(p) is not None
                                      for p, key in zip(sample_paths, matched))
                                  for m in (filtered, failed))
    hit = set(matched) - {None}
    of_key: Dict[str, List[str]] = {}  # the sources of each key's ok rows
    for key, _, source in picked:
        known = of_key.setdefault(key, [])
        if matcher.source_id(source) not in known:
            known.append(matcher.source_id(source))
    local = [(p, matcher.local_sources(p, of_key.get(key, [])) if key is not None else [])
             for p, key in zip(sample_paths, matched)]  # compared with each sampled image
    resolve = output_resolver(path, backend_args)
    views = [(resolve(out), src) for key, out, src in picked
             if out and (key in hit or not sample_paths)]
    outputs = [o for o, _ in views]
    sizes = [file_size(o, backend_args) for o in outputs]
    return ManifestProbe(path, counts['rows'], len(matched) - matched.count(None), example,
                         outputs, [o for o, n in zip(outputs, sizes) if not n],
                         [o for o, n in zip(outputs, sizes) if n == 0], counts['filtered'],
                         filtered_hits, failed_hits,
                         [o for (o, src), n in zip(views, sizes) if n and same_picture(o, src)],
                         [(p, src) for p, srcs in local
                          for src in [matcher.other_picture(p, srcs)] if src],
                         sum(bool(srcs) for _, srcs in local))


def file_exists(path: str, backend_args: Optional[dict] = None) -> bool:
    """Whether a file (a manifest, a view) is there, on any ``mmengine.fileio`` backend; one
    that can only read (``get``, as the HTTP backend) is asked for the file, as training
    would."""
    return file_size(path, backend_args) is not None


def file_size(path: str, backend_args: Optional[dict] = None) -> Optional[int]:
    """The size in bytes of a file, None if it is not there (as :func:`file_exists`); -1 when
    it is there but the backend cannot tell its size (``exists`` only)."""
    if not is_remote(path, backend_args):
        try:
            return os.stat(path).st_size if osp.isfile(path) else None
        except OSError:
            return None
    import mmengine.fileio as fileio
    backend = fileio.get_file_backend(path, backend_args=backend_args)
    if hasattr(backend, 'exists'):
        return -1 if backend.exists(path) else None
    try:
        return len(backend.get(path))
    except OSError:
        return None
