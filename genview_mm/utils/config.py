"""Loading a config the way every genview_mm tool does."""
from typing import Optional

from mmengine.config import Config


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile`` + ``--cfg-options`` + the config's ``genview`` settings.

    Args:
        path (str): config file (``genview_mm::`` bases resolve after ``import genview_mm``).
        cfg_options (dict, optional): overrides, as ``--cfg-options`` gives them.

    Returns:
        Config: the config with :func:`genview_mm.datasets.apply_genview_settings` applied.
    """
    import genview_mm  # noqa: F401  (compat fixes and genview_mm:: bases before parsing)
    from genview_mm.datasets.settings import apply_genview_settings
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    apply_genview_settings(cfg)
    return cfg
