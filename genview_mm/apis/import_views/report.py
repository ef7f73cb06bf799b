"""What an import found: counts, a few examples of each problem, and their summary text."""
from typing import Dict, List, Sequence

EXAMPLES = 5  # examples kept per kind of problem

COUNTS = ('folders', 'sources', 'matched', 'missing', 'empty', 'dangling', 'themselves',
          'undecodable', 'shared', 'extra',
          'duplicates', 'ambiguous', 'ignored', 'with_level', 'level_conflicts', 'list_entries',
          'list_unused')

LINES = (  # (count, label, what it means / what was done)
    ('sources', 'source images scanned', ''),
    ('matched', 'matched (rows written)', ''),
    ('missing', 'sources without a view', 'no row: with prob=1 their pairs use the original '
     'twice'),
    ('empty', 'sources whose view is empty', 'no row: 0-byte files, as a full disk leaves '
     'them; unpack the views again and rerun'),
    ('dangling', 'sources whose view is dangling', 'no row: links to files that do not exist; '
     'mount or fix their targets and rerun'),
    ('themselves', 'views that are their sources', 'no row: links to the source image '
     'itself, or copies of it, so its pairs would be two views of the original; put the '
     'generated views there'),
    ('undecodable', 'views that do not decode', 'no row (--verify): cut short or damaged; '
     'unpack the views again and rerun'),
    ('shared', 'views linked to one file', 'imported: links to the same file as another '
     "source's view (a placeholder?); training pairs each of these sources with that one "
     'picture'),
    ('extra', 'view files without a source', 'not imported'),
    ('duplicates', 'sources with several views', 'took the view of the source\'s name, else '
     'of its extension, else the first by name; a usable one before an unusable one'),
    ('ambiguous', 'ambiguous sources', 'x.jpg and x.png are both sources and no view has its '
     'extension (x.JPG beside x.jpg: its name): no row'),
    ('ignored', 'other files among the views', 'not images, or not --ext'),
)


class ImportReport(dict):
    """Counts of an import (:data:`COUNTS`, plus ``seconds``; ``shared``: views that link to
    the file another matched view links to), ``manifest`` (the path written,
    or None), ``hint`` (what may be wrong when nothing matched), ``views_root``,
    ``source_root``, ``num_lists`` and ``examples`` (up to :data:`EXAMPLES` per count)."""

    def __init__(self, **kwargs) -> None:
        super().__init__({k: 0 for k in COUNTS}, manifest=None, hint=None, seconds=0.0,
                         examples={}, **kwargs)
        self.linked: Dict[int, str] = {}  # hash of a linked view's real file -> its key

    def note(self, kind: str, count: int, examples: Sequence[str]) -> None:
        """Add ``count`` to ``kind`` and keep the first few examples."""
        self[kind] += count
        kept = self['examples'].setdefault(kind, [])
        kept.extend(examples[:max(0, EXAMPLES - len(kept))])


def format_report(report: ImportReport) -> str:
    """The summary printed by ``tools/import_views.py``."""
    r = report
    lines: List[str] = [
        f"Views {r['views_root']} for sources {r['source_root']}: {r['folders']} folders in "
        f"{r['seconds']:.1f} s"]
    for key, label, note in LINES:
        if key in ('sources', 'matched') or r[key]:
            pct = f" ({100 * r['matched'] / r['sources']:.2f}%)" if key == 'matched' and \
                r['sources'] else ''
            lines.append(f'  {label:<30} {r[key]}{pct}' + (f'  [{note}]' if note else ''))
            lines += [f'      e.g. {e}' for e in r['examples'].get(key, [])]
    if r['num_lists']:
        lines.append(f"  {'noise levels':<30} {r['with_level']} of {r['matched']} rows, from "
                     f"{r['num_lists']} lists ({r['list_entries']} lines)")
        for key, label in (('level_conflicts', 'listed with different values (level null)'),
                           ('list_unused', 'list entries without an imported view')):
            if r[key]:
                lines.append(f'    {label}: {r[key]}')
                lines += [f'      e.g. {e}' for e in r['examples'].get(key, [])]
        if r['matched'] and not r['with_level']:
            lines.append('  WARNING: the noise-level lists name none of the imported images; '
                         'check that they list paths of these source images.')
    if r['manifest']:
        lines.append(f"Manifest: {r['manifest']}")
    else:
        lines.append('ERROR: no source image has a view, nothing was written. VIEWS_ROOT must '
                     'mirror --source-root (train_variations/n01440764/x.JPEG is the view of '
                     'train/n01440764/x.JPEG).')
        if r['hint']:
            lines.append(r['hint'])
    return '\n'.join(lines)
