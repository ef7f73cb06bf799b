"""The image file extensions genview_mm reads (one list for every tool), and whether a written
image file is whole."""
import os.path as osp

#: lower-case extensions of the image files the tools list, match and read
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')


def is_image_file(name: str) -> bool:
    """Whether ``name`` ends in one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def image_file_ok(path: str, verify: bool = False) -> bool:
    """Whether an image file exists and is not empty (``verify``: and fully decodes)."""
    try:
        if osp.getsize(path) <= 0:
            return False
    except OSError:
        return False
    if not verify:
        return True
    from PIL import Image
    try:
        with Image.open(path) as img:
            img.load()
        return True
    except Exception:  # noqa: BLE001  (any decode error: the file is bad)
        return False
