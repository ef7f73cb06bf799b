"""Helpers of the tools: config loading, launching, image file names, module registration."""
from .config import load_config
from .image_files import IMAGE_EXTENSIONS, is_image_file
from .setup_env import register_all_modules

__all__ = ['load_config', 'IMAGE_EXTENSIONS', 'is_image_file', 'register_all_modules']
