"""Where this installation keeps the repository's ``tools/`` and ``configs/``: under
``genview_mm/.mim/`` in a wheel (setup.py), beside the package in a checkout."""
import os.path as osp

#: a file next to every tool in ``tools/`` (and in an installed ``genview_mm/.mim/tools``)
TOOLS_MARKER = '_launch_args.py'


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
