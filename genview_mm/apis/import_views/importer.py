"""Turn a folder of pre-generated views (e.g. the released GenView variations) into a manifest."""
import os
import os.path as osp
import time
from typing import Iterator, Optional, Sequence

from ...structures.manifest import MERGED_NAME, ManifestRow, source_key, write_manifest
from ...utils.atomic_write import DiskFull
from ...utils.file_safety import same_file, same_picture
from ...utils.image_files import image_file_ok
from .folder_match import FolderMatch, match_folder, split_name, view_extensions
from .level_lists import NoiseLevelLists
from .report import EXAMPLES, ImportReport
from .tree_walk import FolderPair, walk_pair


class UnreadableFolder(OSError):
    """A folder of the source or views tree cannot be read (its message names it; exit 2)."""


def _flat_views(views_root: str, exts) -> bool:
    """Whether ``views_root`` holds view files at its top (a flat folder of views)."""
    with os.scandir(views_root) as it:
        return any(e.is_file() and e.name.lower().endswith(exts) for e in it)


def _relative_output(view: str, manifest_dir: str) -> str:
    """The view's path relative to the manifest's folder ('/'-separated); absolute if there is
    no relative path (another drive)."""
    try:
        rel = osp.relpath(view, manifest_dir)
    except ValueError:
        return view
    return rel.replace(os.sep, '/')


#: why a matched view gets no row (counts of the report), besides 'ok'
UNUSABLE = ('empty', 'dangling', 'themselves', 'undecodable')


def _view_state(view: str, source: str, verify: bool) -> str:
    """'ok', or why ``view`` gets no row: 'dangling' (a link to nothing: views on a disk that
    is not mounted, or a file gone meanwhile), 'empty' (0 bytes: a full disk while unpacking
    leaves such files), 'themselves' (the source file itself, through a link, or a copy of
    it: its pairs would be plain SSL), 'undecodable' (``verify``: it does not decode)."""
    try:
        info = os.stat(view)
    except OSError:
        return 'dangling'
    if info.st_size == 0:
        return 'empty'
    if same_picture(view, source, info):  # (a source not readable: training reports it)
        return 'themselves'
    return 'undecodable' if verify and not image_file_ok(view, verify=True) else 'ok'


#: views found to be their sources, with none usable, that stop an import (a copied train/)
COPIES_STOP = 1000
#: the linked views whose real files are remembered (a tree of links only, as a Hugging Face
#: snapshot or git-annex makes, would otherwise hold every view's: ~10 MB for these)
LINKS_REMEMBERED = 100_000


def _note_shared(report: ImportReport, view: str, key: str, source: str,
                 source_root: str) -> None:
    """Count a linked ``view`` whose real file an earlier linked view of another source file
    links to (``shared``; among the first :data:`LINKS_REMEMBERED` linked views)."""
    real = hash(osp.realpath(view))
    first = report.linked.get(real)
    if first is None:
        if len(report.linked) < LINKS_REMEMBERED:
            report.linked[real] = key
    elif not same_file(source, osp.join(source_root, first)):  # not one source twice
        report.note('shared', 1, [f'{key}: the same file as the view of {first}'])


def _import_folder(folder: FolderPair, m: FolderMatch, lists: Optional[NoiseLevelLists],
                   report: ImportReport, generator: str, source_root: str,
                   manifest_dir: str, verify: bool = False) -> Iterator[ManifestRow]:
    """One folder's rows; counts what did not match, and the views that are not usable
    (:data:`UNUSABLE`, no row; a source with several views takes a usable one first)."""
    prefix = f'{folder.rel}/' if folder.rel else ''
    report['folders'] += 1
    report['sources'] += len(folder.sources)
    for kind in ('missing', 'extra', 'ambiguous', 'ignored'):
        names = getattr(m, kind)
        report.note(kind, len(names), [prefix + n for n in names[:EXAMPLES]])
    views = {src: (view, ) + others for src, view, others in m.duplicates}
    pairs, unusable = [], {kind: [] for kind in UNUSABLE}
    for src, view in m.pairs:
        source = osp.join(folder.source_dir, src)
        states = [_view_state(osp.join(folder.view_dir, v), source, verify)
                  for v in views.get(src, (view, ))]
        if 'ok' in states:
            pairs.append((src, views.get(src, (view, ))[states.index('ok')]))
        else:
            unusable[states[0]].append(src)
    took = dict(pairs)
    report.note('duplicates', len(m.duplicates),
                [f'{prefix}{s}: took {took[s]}, ignored '
                 f'{", ".join(x for x in (v, ) + o if x != took[s])}' if s in took else
                 f'{prefix}{s}: none of {", ".join((v, ) + o)} is usable (no row)'
                 for s, v, o in m.duplicates[:EXAMPLES]])
    for kind, names in unusable.items():
        if names:
            report.note(kind, len(names), [prefix + n for n in names[:EXAMPLES]])
    entries = (lists.lookup(folder.rel, [split_name(s)[0] for s, _ in pairs]) if lists
               else [None] * len(pairs))
    for (src, view), entry in zip(pairs, entries):
        if entry is not None and entry.conflict:
            report.note('level_conflicts', 1, [prefix + src])
        report['with_level'] += entry is not None and entry.level is not None
        source, path = osp.join(folder.source_dir, src), osp.join(folder.view_dir, view)
        key = source_key(source, source_root)
        if osp.islink(path):
            _note_shared(report, path, key, source, source_root)
        yield ManifestRow(source, key, 0, _relative_output(path, manifest_dir),
                          entry.level if entry else None, entry.fg_ratio if entry else None,
                          None, generator)
    report['matched'] += len(pairs)


def _check_apart(views_root: str, source_root: str) -> None:
    """Refuse roots that are one folder, or one inside the other (links resolved): the views
    would be the source images themselves, and training plain SSL."""
    views, sources = osp.realpath(views_root), osp.realpath(source_root)
    if views == sources:
        how = f'and the source root {source_root!r} are the same folder ({views})'
    elif views.startswith(osp.join(sources, '')):
        how = f'lies inside the source root {source_root!r}'
    elif sources.startswith(osp.join(views, '')):
        how = f'contains the source root {source_root!r}'
    else:
        return
    raise ValueError(f'The views root {views_root!r} {how}: pass the folder of the released '
                     'views (train_variations/, unpacked next to train/) as VIEWS_ROOT and the '
                     'ImageNet train folder as --source-root.')


def import_views(views_root: str, source_root: str, out: str,
                 level_lists: Sequence[str] = (), ext: str = 'any',
                 progress: bool = True, verify: bool = False) -> ImportReport:
    """Write a manifest with one ``ok`` row per source image that has a usable view in
    ``views_root`` (an empty view file, 0 bytes, a link to nothing or to the source image
    itself, and with ``verify`` one that does not decode, is counted and gets no row).

    ``views_root`` mirrors ``source_root`` (the released ``train_variations/`` mirrors
    ``train/``); a view and its source share their relative path up to the extension. Rows get
    ``variation=0``, ``seed=None``, ``clip_sim=None``, ``generator='import:<views root>'``, the
    view's path relative to the manifest's folder, and the noise level (and foreground ratio)
    from ``level_lists`` (else None). Both trees are read one folder at a time. The manifest is
    written to a temporary file and renamed into place; it is not written when nothing matches.

    Args:
        views_root (str): folder of the pre-generated views.
        source_root (str): folder of the source images (the keys are relative to it).
        out (str): manifest path (a folder gets ``manifest.jsonl`` inside).
        level_lists (Sequence[str]): official ``fg_ratios_<level>.txt`` lists. Defaults to ().
        ext (str): extension of the view files, or 'any' image extension. Defaults to 'any'.
        progress (bool): show a tqdm bar (one step per folder). Defaults to True.
        verify (bool): decode every matched view (reads each file; finds views cut short by
            an unpack that was stopped). Defaults to False.

    Returns:
        ImportReport: the counts and examples.

    Raises:
        FileNotFoundError: ``views_root`` or ``source_root`` is not a folder.
        ValueError: they are the same folder, or one lies inside the other.
        OSError: the manifest cannot be written.
    """
    if not osp.isdir(views_root):
        raise FileNotFoundError(
            f'The views root {views_root!r} is not a folder. Unpack the released views into it '
            '(docs/released_views_and_official_artefacts.md) and pass the ImageNet train '
            'folder as --source-root.')
    if not osp.isdir(source_root):
        raise FileNotFoundError(
            f'The source root {source_root!r} is not a folder: pass the folder of the source '
            'images the views were made from (ImageNet\'s train/) as --source-root.')
    _check_apart(views_root, source_root)
    start = time.time()
    exts = view_extensions(ext)
    views_root, source_root = osp.abspath(views_root), osp.abspath(source_root)
    out = osp.abspath(out)
    out = osp.join(out, MERGED_NAME) if osp.isdir(out) else out
    lists = NoiseLevelLists(level_lists) if level_lists else None
    report = ImportReport(views_root=views_root, source_root=source_root,
                          num_lists=len(level_lists),
                          list_entries=lists.num_entries if lists else 0)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(unit='folder', desc='import views', dynamic_ncols=True)

    def rows() -> Iterator[ManifestRow]:
        try:
            # outputs are spelled between the real folders (as read_manifest resolves them): a
            # link's path climbed (..) to another folder when the manifest was reached otherwise
            for folder in walk_pair(source_root, osp.realpath(views_root)):
                yield from _import_folder(folder, match_folder(folder.sources, folder.views,
                                                               exts),
                                          lists, report, f'import:{views_root}', source_root,
                                          osp.realpath(osp.dirname(out)), verify)
                if bar is not None:
                    bar.set_postfix(matched=report['matched'], refresh=False)
                    bar.update()
                if report['themselves'] >= COPIES_STOP and not report['matched']:
                    raise ValueError(  # a copy of train/: each view read whole, hours for none
                        f"The first {report['themselves']} views in {views_root} are their "
                        'source images (links to them, or copies): VIEWS_ROOT is the source '
                        'folder or a copy of it. Pass the folder of the released views '
                        '(train_variations/) as VIEWS_ROOT; no manifest was written.')
        except OSError as exc:  # reading the trees, not writing the manifest
            raise UnreadableFolder(
                f'Cannot read {exc.filename or "a folder of the trees"} ({exc.strerror or exc}): '
                'fix its permissions or its mount and rerun (no manifest was written).') from exc

    try:
        written = write_manifest(out, rows(), keep_empty=False)  # opened before the walk
    except (UnreadableFolder, DiskFull):  # a full disk names the folder, exit 1
        raise
    except OSError as exc:
        raise OSError(f'Cannot write the manifest {out!r} ({exc.strerror or exc}): choose a '
                      'writable --out, e.g. data/genview/views_released/manifest.jsonl.') from exc
    finally:
        if bar is not None:
            bar.close()
    if written:
        report['manifest'] = out
    elif osp.isdir(osp.join(views_root, osp.basename(source_root))):
        report['hint'] = (f'{views_root} holds a folder {osp.basename(source_root)}/: if '
                          'the views are in there, pass '
                          f'{osp.join(views_root, osp.basename(source_root))} as VIEWS_ROOT.')
    elif _flat_views(views_root, exts):
        report['hint'] = (
            f'{views_root} holds the views flat (as the official generation script writes '
            'them) and the sources are in class folders: put each view in the folder of its '
            "source (ImageNet's names start with the class: cd VIEWS_ROOT && for f in *_*.*; "
            'do d="${f%%_*}"; mkdir -p "$d" && mv "$f" "$d/"; done), then import again.')
    elif len(exts) == 1 and report['ignored']:  # --ext .jpg for views named .JPEG
        report['hint'] = (f"--ext {exts[0]} left out {report['ignored']} files among the views "
                          f"(e.g. {report['examples']['ignored'][0]}): if the views have "
                          'another extension, pass it, or --ext any.')
    if lists is not None:
        unused, examples = lists.unused(EXAMPLES)
        report.note('list_unused', unused, examples)
    report['seconds'] = round(time.time() - start, 3)
    return report
