"""The command-line tools, runnable from an installed genview_mm (no repository needed).

The tools are the files under the repository's ``tools/``; a built wheel carries them as
package data under ``genview_mm/.mim/tools`` (the layout of mmpretrain and mmdet). Each
``genview_mm.tools.<name>`` module runs ``tools/<name>.py``::

    python -m genview_mm.tools.check_config CONFIG      # or: genview-check-config CONFIG

Standard library only: importing this package loads neither torch nor MMEngine.
"""
