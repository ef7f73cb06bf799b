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


def by_normal_form(names: Sequence[str]) -> Dict[str, str]:
    """``{NFC form: name}``: a name written on macOS (NFD, ``e`` + a combining accent) and the
    same name written on Linux (one ``é``) look alike but are different bytes. The names as they
    are where two of them share a form (both are then kept)."""
    forms = {unicodedata.normalize('NFC', n): n for n in names}
    return forms if len(forms) == len(names) else {n: n for n in names}


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
    if source in candidates:  # x.jpg beside x.JPG took x.JPG
        return source
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
    by_stem: Dict[str, List[str]] = {}
    ignored = []
    view_forms, src_forms = by_normal_form(views), by_normal_form(sources)
    for form in sorted(view_forms):  # stems compared in one Unicode form (by_normal_form)
        stem, ext = split_name(form)
        if ext in view_exts:
            by_stem.setdefault(stem, []).append(view_forms[form])
        else:
            ignored.append(view_forms[form])
    src_stems: Dict[str, List[str]] = {}
    for form in sorted(src_forms):
        src_stems.setdefault(split_name(form)[0], []).append(src_forms[form])
    pairs, missing, duplicates, ambiguous, taken = [], [], [], [], set()
    for stem, names in src_stems.items():
        candidates = by_stem.get(stem, [])
        for name in names:
            if len(names) > 1 and candidates:  # x.jpg and x.png are both sources
                ext = split_name(name)[1]
                own = [v for v in candidates if split_name(v)[1] == ext]
                if sum(split_name(n)[1] == ext for n in names) > 1:  # x.JPG and x.jpg too
                    own = [v for v in own if v == name]  # only its own name tells
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
