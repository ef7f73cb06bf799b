"""Where this installation keeps the repository's ``tools/`` and ``configs/``: under
``genview_mm/.mim/`` in a wheel (setup.py), beside the package in a checkout."""
import os
import os.path as osp
from typing import Dict, Optional

#: a file next to every tool in ``tools/`` (and in an installed ``genview_mm/.mim/tools``)
TOOLS_MARKER = '_launch_args.py'
#: tool file (tools/<name>.py) -> console command (setup.py's entry points, read from here)
TOOLS: Dict[str, str] = {
    'train': 'genview-train',
    'test': 'genview-test',
    'check_config': 'genview-check-config',
    'generate_views': 'genview-generate',
    'merge_manifests': 'genview-merge-manifests',
    'import_views': 'genview-import-views',
    'fit_foreground_pca': 'genview-fit-pca',
    'import_official_pca': 'genview-import-official-pca',
    'convert_checkpoint': 'genview-convert-checkpoint',
    'visualize_pairs': 'genview-visualize-pairs',
    'make_semi_subsets': 'genview-make-semi-subsets',
    'make_toy_coco': 'genview-make-toy-coco',
    'genview_demo': 'genview-demo',
    'sample_extra_images': 'genview-sample-extra-images',
}


def tools_dir() -> str:
    """The folder holding the tool files: ``genview_mm/.mim/tools`` of this installation, else
    the ``tools/`` folder of the checkout this package sits in.

    Raises:
        FileNotFoundError: neither exists (a wheel built without its tools).
    """
    package = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for folder in (osp.join(package, '.mim', 'tools'), osp.join(osp.dirname(package), 'tools')):
        if osp.isfile(osp.join(folder, TOOLS_MARKER)):
            return folder
    raise FileNotFoundError(f'no tools found under {package}/.mim/tools: reinstall genview_mm '
                            '(pip install genview_mm, or pip install -e from a full clone)')


def configs_dir() -> str:
    """The configs beside the tools (``genview_mm/.mim/configs``, or the checkout's)."""
    return osp.join(osp.dirname(tools_dir()), 'configs')


def tool_command(name: str, cwd: Optional[str] = None) -> str:
    """How a user runs ``tools/<name>.py`` from ``cwd`` (default: the working folder):
    ``python tools/<name>.py`` in the root of the checkout this package sits in (the docs'
    form), else its console command (a wheel, or a checkout used from another folder, where
    ``tools/`` is not there to run)."""
    here = osp.join(cwd or os.getcwd(), 'tools', f'{name}.py')
    try:
        mine = osp.join(tools_dir(), f'{name}.py')
        if osp.isfile(here) and osp.samefile(here, mine):
            return f'python tools/{name}.py'
    except OSError:  # no tools folder (tools_dir), or a file gone between the checks
        pass
    return TOOLS[name]
