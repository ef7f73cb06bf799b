"""The annotation list of an extra set: one image path per line, relative to the folder the
config's ``CustomDataset(with_label=False)`` reads them from (its ``data_prefix``), nothing else
(MMPretrain reads every line as a path). Its provenance goes to a ``.json`` beside it."""
import json
from typing import Iterable, Optional

from ...utils.atomic_write import atomic_write


def write_image_list(paths: Iterable[str], out: str, provenance: Optional[dict] = None) -> None:
    """Write ``provenance`` as ``OUT.json`` if given, then ``paths`` one per line, each with
    :func:`~genview_mm.utils.atomic_write.atomic_write` (a reader never sees half a list, an
    interrupted run leaves the old one). The record first: a run stopped between the two
    leaves a record without its list, which a rerun replaces; the other way round it left a
    list without a record, which the tool cannot tell from a user's and refused."""
    if provenance is not None:
        with atomic_write(out + '.json') as f:
            f.write(json.dumps(provenance, indent=1, sort_keys=True) + '\n')
    with atomic_write(out) as f:
        f.writelines(p + '\n' for p in paths)


def count_list_images(path: str) -> int:
    """The number of images a list names: its non-blank lines (1.28M lines: ~0.2 s)."""
    with open(path, 'rb') as f:
        return sum(1 for line in f if line.strip())
