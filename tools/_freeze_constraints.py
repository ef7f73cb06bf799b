"""Print tools/constraints.txt for the environment this runs in (maintainers: after a change of
the stack in tools/bootstrap_env.sh has passed the fresh-clone CI, from that venv):

    .venv/bin/python tools/_freeze_constraints.py > tools/constraints.txt

One ``name==version ; python_version == "X.Y"`` line per installed distribution, for this
Python only (other Pythons resolve freely, unverified), except torch and everything it pulls
(``GENVIEW_TORCH_SPEC`` may name another build, with other CUDA libraries), mmcv (built here,
``MMCV_VERSION``) and genview_mm itself.
"""
import importlib.metadata as md
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HEADER = '''\
# The versions tools/bootstrap_env.sh installs, verified by the fresh-clone CI: every pip install
# of its steps 2, 4 and 5 takes this file as constraints (-c: a line pins a package only where
# something asks for it). Only on the Python the suite was verified with; on another one pip
# picks versions that fit, unverified. Not here: torch and what it pulls (GENVIEW_TORCH_SPEC may
# name another build), mmcv (MMCV_VERSION) and genview_mm. Remade by tools/_freeze_constraints.py.
'''
NOT_PINNED = {'torch', 'torchvision', 'mmcv', 'genview-mm'}


def torch_closure(dists: dict) -> set:
    """torch and every distribution it requires, directly or not (extras left out)."""
    seen, todo = set(), ['torch']
    while todo:
        name = todo.pop()
        if name in seen or name not in dists:
            continue
        seen.add(name)
        for text in dists[name].requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({'extra': ''}):
                todo.append(canonicalize_name(req.name))
    return seen


def constraints() -> str:
    dists = {canonicalize_name(d.metadata['Name']): d for d in md.distributions()}
    left_out = torch_closure(dists) | NOT_PINNED
    marker = 'python_version == "%d.%d"' % sys.version_info[:2]
    lines = [f'{name}=={dists[name].version} ; {marker}' for name in sorted(dists)
             if name not in left_out and not name.startswith(('nvidia-', 'cuda-'))]
    return HEADER + '\n'.join(lines) + '\n'


if __name__ == '__main__':
    sys.stdout.write(constraints())
