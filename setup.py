"""Install genview_mm.

Besides the Python package, the configs are installed as package data under
``genview_mm/.mim/configs`` so that MMEngine resolves ``_base_ = 'genview_mm::<cfg>.py'``
(the same layout mmpretrain and mmdet use). An editable install links that folder to the
repository's ``configs/``; a normal install copies it.
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'genview_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def add_mim_configs() -> None:
    """Expose ``configs/`` as ``genview_mm/.mim/configs`` (a symlink when editable, else a
    copy)."""
    src = osp.join(HERE, 'configs')
    mim = osp.join(HERE, 'genview_mm', '.mim')
    dst = osp.join(mim, 'configs')
    editable = any(cmd in sys.argv for cmd in ('develop', 'editable_wheel'))
    os.makedirs(mim, exist_ok=True)
    # MMEngine reads .mim/model-index.yml before falling back to .mim/configs/<path>; an empty
    # index (no model-zoo entries) makes it take the fallback instead of raising.
    with open(osp.join(mim, 'model-index.yml'), 'w') as f:
        f.write('Import: []\n')
    if osp.islink(dst) or osp.isfile(dst):
        os.remove(dst)
    elif osp.isdir(dst):
        shutil.rmtree(dst)
    if editable:
        try:
            os.symlink(osp.relpath(src, mim), dst, target_is_directory=True)
            return
        except OSError:  # no symlinks (e.g. some Windows setups): fall back to a copy
            pass
    shutil.copytree(src, dst)


if __name__ == '__main__':
    add_mim_configs()
    setup(
        name='genview_mm',
        version=version(),
        description='GenView (ECCV 2024) for MMPretrain and MMDetection: adaptive view '
        'generation and quality-driven contrastive loss',
        long_description=open(osp.join(HERE, 'README.md')).read() if osp.exists(
            osp.join(HERE, 'README.md')) else '',
        long_description_content_type='text/markdown',
        license='Apache-2.0',
        python_requires='>=3.9',
        packages=find_packages(exclude=('tests', 'tests.*', 'tools', 'configs')),
        include_package_data=True,
        package_data={'genview_mm': ['.mim/model-index.yml', '.mim/configs/**/*.py',
                                    '.mim/configs/*.py']},
        install_requires=[
            'torch>=2.0', 'torchvision', 'mmengine>=0.10.7,<1.0', 'mmcv>=2.0.0,<2.2.0',
            'mmpretrain>=1.2.0,<1.3', 'numpy', 'tqdm', 'Pillow',
        ],
        extras_require={
            'generation': ['diffusers>=0.30', 'transformers>=4.40'],
            'scorer': ['timm>=1.0', 'transformers>=4.40'],
            'detection': ['mmdet>=3.3.0,<3.4', 'pycocotools'],
            # genview_mm.demo (tools/run_demo.sh): real photos that ship in scikit-image
            'demo': ['scikit-image', 'diffusers>=0.30', 'transformers>=4.40', 'timm>=1.0'],
            'tests': ['pytest', 'scikit-image', 'scikit-learn', 'ruff'],
        },
        zip_safe=False,
    )
