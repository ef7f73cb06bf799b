"""The rule that pairs source images with pre-generated views inside one folder (pure)."""
import os.path as osp
import unicodedata
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from ...utils.image_files import IMAGE_EXTENSIONS


def view_extensions(ext: str = 'any') -> Tuple[str, ...]:
    """Lower-case extensions that count as view files: every image extension for ``'any'``,
    else the one given (``'png'``, ``'.JPEG'``, ... are all accepted).

    Raises:
        ValueError: an empty extension, or one that is not an image's (no view could match).
    """
    ext = ext.strip().lower()
    if ext == 'any':
        return IMAGE_EXTENSIONS
    if ext in ('', '.'):
        raise ValueError("--ext takes an extension such as '.jpg' or 'png', or 'any'")
    ext = ext if ext.startswith('.') else '.' + ext
    if ext not in IMAGE_EXTENSIONS:
        raise ValueError(f'--ext {ext!r} is not an image extension, so no view would match: '
                         f"pass one of {' '.join(IMAGE_EXTENSIONS)}, or 'any'")
    return (ext, )


def split_name(name: str) -> Tuple[str, str]:
    """(stem, lower-case extension) of a file name: ``'x.JPEG'`` -> ``('x', '.jpeg')``."""
    stem, ext = osp.splitext(name)
    return stem, ext.lower()


def nfc(name: str) -> str:
    """``name`` in Unicode's composed form: a name written on macOS (NFD, ``e`` + a combining
    accent) and the same name written on Linux (one ``é``) look alike but are other bytes."""
    return unicodedata.normalize('NFC', name)


def pair_by_form(left: Sequence[str], right: Sequence[str]) -> Dict[str, str]:
    """``{right name: left name}`` for the names that pair only in one Unicode form: exact names
    pair first; a right name with no exact match takes the one left name without an exact match
    that has its :func:`nfc` form, where that form is unique on both sides."""
    left_set, right_set = set(left), set(right)
    loose_left: Dict[str, List[str]] = {}
    loose_right: Dict[str, List[str]] = {}
    for names, other, loose in ((left, right_set, loose_left), (right, left_set, loose_right)):
        for name in names:
            if name not in other:
                loose.setdefault(nfc(name), []).append(name)
    return {r[0]: lt[0] for form, r in loose_right.items()
            for lt in [loose_left.get(form, [])] if len(r) == 1 and len(lt) == 1}


def own_names(candidates: Sequence[str], name: str) -> List[str]:
    """The candidates that are ``name`` itself, else those that are it in another Unicode form."""
    return ([v for v in candidates if v == name] or
            [v for v in candidates if nfc(v) == nfc(name)])


class FolderMatch(NamedTuple):
    """How the files of one folder pair up; every list is in sorted name order.

    ``pairs``: (source name, view name). ``missing``: sources without a view. ``extra``: view
    files that belong to no source (no source has their stem, or only ambiguous ones do).
    ``duplicates``: (source name, chosen view, ignored views) when one source has several views
    (``x.JPEG`` and ``x.png``). ``ambiguous``: sources that share their stem with another
    source and have no view with their own extension, or, where they differ only in the case
    of the extension (``x.JPG``, ``x.jpg``), none with their own name (no pair: which one the
    view belongs to is unknown). ``ignored``: files in the views folder that are not views
    (not an image, or not the extension asked for).
    """
    pairs: List[Tuple[str, str]]
    missing: List[str]
    extra: List[str]
    duplicates: List[Tuple[str, str, Tuple[str, ...]]]
    ambiguous: List[str]
    ignored: List[str]


def _pick(source: str, candidates: Sequence[str]) -> Optional[str]:
    """The view of ``source`` among views with its stem: the only one; else the one of its
    name; else the first (by name) with the source's extension (case-insensitively); else the
    first by name."""
    if len(candidates) == 1:
        return candidates[0]
    own_name = own_names(candidates, source)  # x.jpg beside x.JPG took x.JPG
    if own_name:
        return own_name[0]
    ext = split_name(source)[1]
    same = [v for v in candidates if split_name(v)[1] == ext]
    return (same or list(candidates))[0]


def match_folder(sources: Sequence[str], views: Sequence[str],
                 view_exts: Sequence[str] = IMAGE_EXTENSIONS) -> FolderMatch:
    """Pair source file names with view file names of the same relative folder.

    A view belongs to the source with the same name up to the extension (compared
    case-insensitively): ``x.JPEG`` <- ``x.png``, ``x.jpeg`` or ``x.JPEG``.

    Args:
        sources (Sequence[str]): image file names in the source folder (other files are
            expected to be filtered out already).
        views (Sequence[str]): all file names in the views folder.
        view_exts (Sequence[str]): lower-case extensions that count as views.
            Defaults to every image extension.

    Returns:
        FolderMatch: the pairs and every kind of leftover.
    """
    view_stems: Dict[str, List[str]] = {}
    ignored = []
    for name in sorted(views):
        stem, ext = split_name(name)
        if ext in view_exts:
            view_stems.setdefault(stem, []).append(name)
        else:
            ignored.append(name)
    src_stems: Dict[str, List[str]] = {}
    for name in sorted(sources):
        src_stems.setdefault(split_name(name)[0], []).append(name)
    alias = pair_by_form(list(src_stems), list(view_stems))  # a stem in another Unicode form
    by_stem = {alias.get(stem, stem): names for stem, names in view_stems.items()}
    pairs, missing, duplicates, ambiguous, taken = [], [], [], [], set()
    for stem, names in src_stems.items():
        candidates = by_stem.get(stem, [])
        for name in names:
            if len(names) > 1 and candidates:  # x.jpg and x.png are both sources
                ext = split_name(name)[1]
                own = [v for v in candidates if split_name(v)[1] == ext]
                if sum(split_name(n)[1] == ext for n in names) > 1:  # x.JPG and x.jpg too
                    own = own_names(own, name)  # only its own name tells
                if not own:
                    ambiguous.append(name)
                    continue
            else:
                own = candidates
            if not own:
                missing.append(name)
                continue
            view = _pick(name, own)
            pairs.append((name, view))
            others = tuple(v for v in own if v != view)
            if others:
                duplicates.append((name, view, others))
            taken.update(own)
    extra = [v for vs in by_stem.values() for v in vs if v not in taken]
    return FolderMatch(sorted(pairs), sorted(missing), sorted(extra), sorted(duplicates),
                       sorted(ambiguous), ignored)
