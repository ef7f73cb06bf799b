"""The preflight's result: one line per prerequisite, and how a missing one is made."""
from typing import List, NamedTuple, Sequence

OK, MISSING, OFFLINE, BROKEN, NOTE = 'ok', 'MISSING', 'OFFLINE', 'BROKEN', 'note'
FAILING = (MISSING, OFFLINE, BROKEN)


class Check(NamedTuple):
    """One prerequisite.

    Attributes:
        what (str): what it is, e.g. ``'ImageNet train data'``.
        status (str): ``'ok'``, ``'MISSING'``, ``'OFFLINE'`` (cannot be checked or fetched
            without the network), ``'BROKEN'`` (there but unusable) or ``'note'`` (usable, worth
            knowing).
        detail (str): the path or id and what was found.
        fix (Sequence[str]): the commands or settings that make it, one per line.
    """
    what: str
    status: str
    detail: str
    fix: Sequence[str] = ()

    @property
    def failing(self) -> bool:
        return self.status in FAILING


def format_checklist(checks: Sequence[Check], config: str, verbose: bool = False) -> str:
    """The checklist as text: failing items (all items with ``verbose``) and a summary line."""
    shown = [c for c in checks if verbose or c.status != OK]
    failing = [c for c in checks if c.failing]
    lines: List[str] = [f'genview_mm preflight: {config}']
    previous: Sequence[str] = ()
    for c in shown:
        lines.append(f'  {c.status.upper():8} {c.what}: {c.detail}')
        fixes = ['the same as above'] if c.fix and list(c.fix) == list(previous) else c.fix
        for i, fix in enumerate(fixes):
            lines.append(f'  {"":8}   {"->" if i == 0 else "  "} {fix}')
        previous = c.fix or previous
    if failing:
        lines.append(f'{len(failing)} of {len(checks)} prerequisites are missing or unusable; '
                     'nothing was started. See README "Before your first real run" (files '
                     'only the job\'s nodes see, e.g. from a Slurm login node: pass '
                     '--skip-preflight).')
    else:
        lines.append('the 1 prerequisite found.' if len(checks) == 1 else
                     f'all {len(checks)} prerequisites found.')
    return '\n'.join(lines)
