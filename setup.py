"""Install genview_mm.

Besides the Python package, the configs and tools are installed as package data under
``genview_mm/.mim/configs`` and ``genview_mm/.mim/tools`` so that MMEngine resolves
``_base_ = 'genview_mm::<cfg>.py'`` and ``genview-<tool>`` / ``python -m genview_mm.tools.<tool>``
run the tools without the repository (the layout mmpretrain and mmdet use). In the source tree
both folders are symlinks to ``configs/`` and ``tools/``; a wheel carries their files.
"""
import ast
import os
import os.path as osp
import shutil

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'genview_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def link_or_copy(name: str) -> None:
    """Expose ``<repo>/<name>`` as ``genview_mm/.mim/<name>``: a symlink ``../../<name>``.

    The build follows the link, so a wheel carries real files and the source tree keeps the
    link: a ``pip wheel .`` in an editable checkout must not leave a copy that goes stale when
    ``<name>/`` changes. An existing link to ``../../<name>`` is left as it is; anything else
    there (a copy an older setup.py left) is replaced by the link. Only where symlinks are not
    available (some Windows setups) is the folder copied.
    """
    src = osp.join(HERE, name)
    mim = osp.join(HERE, 'genview_mm', '.mim')
    dst = osp.join(mim, name)
    if not osp.isdir(src):  # an sdist without it: keep what is there
        return
    if osp.islink(dst) and osp.realpath(dst) == osp.realpath(src):
        return
    if osp.islink(dst) or osp.isfile(dst):
        os.remove(dst)
    elif osp.isdir(dst):
        shutil.rmtree(dst)
    try:
        os.symlink(osp.relpath(src, mim), dst, target_is_directory=True)
    except OSError:  # no symlinks: a copy (refreshed by every build)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


def add_mim_files() -> None:
    """``configs/`` and ``tools/`` as ``genview_mm/.mim/{configs,tools}`` (mmpretrain's layout:
    MMEngine resolves ``genview_mm::`` bases there; ``genview_mm.tools`` runs the tools)."""
    mim = osp.join(HERE, 'genview_mm', '.mim')
    os.makedirs(mim, exist_ok=True)
    # MMEngine reads .mim/model-index.yml before falling back to .mim/configs/<path>; an empty
    # index (no model-zoo entries) makes it take the fallback instead of raising.
    index = osp.join(mim, 'model-index.yml')
    if not osp.isfile(index):
        with open(index, 'w') as f:
            f.write('Import: []\n')
    for name in ('configs', 'tools'):
        link_or_copy(name)


def tool_commands() -> list:
    """``genview-<tool>`` console scripts, from ``genview_mm.utils.installation.TOOLS`` (the
    one list of tools; read without importing genview_mm)."""
    with open(osp.join(HERE, 'genview_mm', 'utils', 'installation.py')) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, 'id', '') == 'TOOLS':
            tools = ast.literal_eval(node.value)
            return [f'{command} = genview_mm.tools.{name}:main' for name, command in tools.items()]
    raise RuntimeError('genview_mm/utils/installation.py defines no TOOLS')


if __name__ == '__main__':
    add_mim_files()
    setup(
        name='genview_mm',
        version=version(),
        description='GenView (ECCV 2024) for MMPretrain and MMDetection: adaptive view '
        'generation and quality-driven contrastive loss',
        long_description=open(osp.join(HERE, 'README.md')).read() if osp.exists(
            osp.join(HERE, 'README.md')) else '',
        long_description_content_type='text/markdown',
        license='Apache-2.0',
        python_requires='>=3.10',  # torch 2.14 (3.11 verified)
        packages=find_packages(exclude=('tests', 'tests.*', 'tools', 'configs')),
        include_package_data=True,
        package_data={'genview_mm': ['.mim/model-index.yml', '.mim/configs/**/*.py',
                                    '.mim/configs/*.py', '.mim/tools/*.py', '.mim/tools/*.sh']},
        entry_points={'console_scripts': tool_commands()},
        install_requires=[
            # torch>=2.6: weights_only loading by default, which genview_mm.compat checks at
            # import (MMEngine 0.10.7 passes no weights_only)
            'torch>=2.6', 'torchvision',
            # genview_mm.compat's safe loading is verified against 0.10.7 (checked at import)
            'mmengine==0.10.7', 'mmcv>=2.0.0,<2.2.0',
            'mmpretrain>=1.2.0,<1.3', 'numpy', 'tqdm', 'Pillow',
            # every genview_mm:: or mmpretrain:: base goes through mmengine's pkg_resources
            # import, which setuptools 81 drops (and Python 3.12 venvs have no setuptools)
            'setuptools>=77,<81',
        ],
        extras_require={
            'generation': ['diffusers>=0.30', 'transformers>=4.40'],
            'scorer': ['timm>=1.0', 'transformers>=4.40'],
            'detection': ['mmdet>=3.3.0,<3.4', 'pycocotools'],
            # genview_mm.demo (tools/run_demo.sh): real photos that ship in scikit-image
            'demo': ['scikit-image', 'diffusers>=0.30', 'transformers>=4.40', 'timm>=1.0'],
            'tests': ['pytest', 'scikit-image', 'scikit-learn', 'ruff', 'timm>=1.0',
                      'diffusers>=0.30', 'transformers>=4.40', 'mmdet>=3.3.0,<3.4',
                      'pycocotools'],
        },
        zip_safe=False,
    )
