"""The one reader of MMPretrain annotation lists (``relative/path.JPEG [label]`` per line).

MMPretrain's ``CustomDataset`` reads such a file line by line and splits the last space-separated
field off as the integer label. Every genview_mm tool that takes a list (view generation, the
preflight's dataset sample, the semi-supervised subsets, the extra-image sampler) reads it here,
the same way: blank lines and ``#`` comments are skipped, a trailing integer after a space is the
label, anything else is part of the path (a byte-order mark is not: MMPretrain's datasets keep it,
which the preflight reports). Files are streamed (a 1.28M-line list is never held as
a whole) and may live on any ``mmengine.fileio`` backend.
"""
from typing import Iterator, Optional, Tuple

Entry = Tuple[str, Optional[int]]


class NotText(ValueError):
    """The file given as a list is not UTF-8 text (an image or an archive, say)."""


def parse_annotation_line(line: str, comments: bool = True) -> Optional[Entry]:
    """``'a/b.JPEG 3'`` -> ``('a/b.JPEG', 3)``; ``'a/b.JPEG'`` -> ``('a/b.JPEG', None)``; a
    blank line -> None, and a ``#`` line too unless ``comments=False`` (MMPretrain reads it as
    an image). The label is the last word if ``int()`` reads it, as MMPretrain's
    ``CustomDataset`` reads it (``+1`` and ``1_0`` too)."""
    line = line.strip()
    if not line or (comments and line.startswith('#')):
        return None
    parts = line.rsplit(' ', 1)
    if len(parts) == 2 and parts[0].strip():
        try:  # 'a.jpg  0': MMPretrain's path is 'a.jpg ' (kept, so no file is found here too)
            return parts[0], int(parts[1])
        except ValueError:
            pass
    return line, None


def read_annotation_list(path: str, backend_args: Optional[dict] = None) -> Iterator[Entry]:
    """Stream the ``(path, label or None)`` entries of an annotation list.

    Args:
        path (str): a local path or any URI an ``mmengine.fileio`` backend reads.
        backend_args (dict, optional): ``mmengine.fileio`` backend arguments. Defaults to None.

    Yields:
        Tuple[str, Optional[int]]: the image path as written in the file, and its label.

    Raises:
        NotText: the file is not UTF-8 text (naming it; a ValueError).
    """
    from mmengine.fileio import get_local_path
    with get_local_path(path, backend_args=backend_args) as local:
        # a list saved as UTF-8 with BOM: the mark is no part of its first path (a subset or
        # extra-image sample drawn from it listed that path mid-file, naming no image)
        with open(local, encoding='utf-8-sig') as f:
            try:
                for line in f:
                    entry = parse_annotation_line(line)
                    if entry is not None:
                        yield entry
            except UnicodeDecodeError as exc:  # an image or archive given as the list
                raise NotText(f'{path} is not UTF-8 text ({exc.reason}): give an annotation '
                                 'list, one "relative/path.JPEG [label]" per line') from None
