"""Loading a config the way every genview_mm tool does."""
from typing import Optional

from mmengine.config import Config

from .genview_settings import apply_genview_settings


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile`` + ``--cfg-options`` + the config's ``genview`` settings.

    Args:
        path (str): config file (``genview_mm::`` bases resolve: ``genview_mm`` is imported).
        cfg_options (dict, optional): overrides, as ``--cfg-options`` gives them.

    Returns:
        Config: the config with :func:`genview_mm.apis.apply_genview_settings` applied.
    """
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    apply_genview_settings(cfg)
    return cfg
