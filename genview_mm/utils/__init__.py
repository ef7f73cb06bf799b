"""Leaves used across the package: image file names, distributed gathers, module registration.

``register_all_modules`` is here because MMEngine looks for it in ``<scope>.utils`` when a
registry of the ``genview_mm`` scope is first used.
"""
from .image_files import IMAGE_EXTENSIONS, is_image_file
from .setup_env import register_all_modules

__all__ = ['IMAGE_EXTENSIONS', 'is_image_file', 'register_all_modules']
