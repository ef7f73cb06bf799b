"""The annotation list of an extra set: one image path per line, relative to the folder the
config's ``CustomDataset(with_label=False)`` reads them from (its ``data_prefix``), nothing else
(MMPretrain reads every line as a path). Its provenance goes to a ``.json`` beside it."""
import json
import os
from typing import Iterable, Optional, Tuple

from ...utils.atomic_write import atomic_write


def write_image_list(paths: Iterable[str], out: str, provenance: Optional[dict] = None) -> None:
    """Write ``paths`` one per line and ``provenance`` as ``OUT.json`` if given, each with
    :func:`~genview_mm.utils.atomic_write.atomic_write` (a reader never sees half a list, an
    interrupted run leaves the old one). The list is written and synced, then the record goes
    into place, then the list: a failed list write (a full disk) leaves the old record with
    the old list, and a run stopped between the two renames leaves a new record, which tells
    a rerun the list is the tool's own to replace (a list without its record could not be told
    from a user's and was refused)."""
    with atomic_write(out) as f:
        f.writelines(p + '\n' for p in paths)
        f.flush()
        os.fsync(f.fileno())  # a full disk shows here, before the record is replaced
        if provenance is not None:
            with atomic_write(out + '.json') as record:
                record.write(json.dumps(provenance, indent=1, sort_keys=True) + '\n')


def count_list_images(path: str, folder: Optional[str] = None) -> Tuple[int, Optional[str]]:
    """The images MMPretrain reads from a list, and what is wrong with its first line that is
    not a plain path (None if every line is one).

    ``CustomDataset(with_label=False)`` takes every line as a path, as it is: a blank line is a
    sample of the image folder itself, and a path with spaces around it or a ``#`` line (a
    comment elsewhere) is most likely a mistake that names no file, and training fails when it
    reaches it; with ``folder`` (the images' folder) such a line is fine when it names a file
    there (``#tag.jpg`` is a file name too). 1.28M lines: ~0.5 s.
    """
    count, problem = 0, None
    with open(path, 'rb') as f:
        for count, line in enumerate(f, 1):
            if problem is None and not line.isascii() and not _utf8(line):
                problem = f'line {count} is not UTF-8 text'
            if problem is None and (not line.strip() or line[:1] in _ODD_START
                                    or line.rstrip(b'\r\n')[-1:] in _SPACE):
                text = line.rstrip(b'\r\n').decode('utf-8', 'replace')
                if text.strip() and folder and os.path.isfile(os.path.join(folder, text)):
                    continue
                problem = (f'line {count} is blank' if not text.strip() else
                           f'line {count} ({text!r}) is a comment' if text.startswith('#') else
                           f'line {count} ({text!r}) has spaces around its path')
    return count, problem


_SPACE = (b' ', b'\t')
_ODD_START = _SPACE + (b'#',)


def _utf8(line: bytes) -> bool:
    """Whether ``line`` decodes as UTF-8 (MMPretrain reads a list as UTF-8 text)."""
    try:
        line.decode('utf-8')
    except UnicodeDecodeError:
        return False
    return True
