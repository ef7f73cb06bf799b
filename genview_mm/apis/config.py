"""Loading a config the way every genview_mm tool does."""
import difflib
import logging
from typing import List, Optional

from mmengine.config import Config
from mmengine.logging import print_log

from ..utils.config_keys import dotted_get
from ..utils.dist import is_first_rank
from .genview_settings import GenViewSettingError, apply_genview_settings

#: settings that hold one path, by the last part of their key (``data_prefix.img`` too)
_PATH_KEYS = ('load_from', 'resume_from', 'checkpoint', 'pretrained', 'img', 'img_path')
_PATH_ENDINGS = ('_root', '_file', '_dir', '_path', '_prefix')


def refuse_split_paths(cfg, options: dict) -> None:
    """Refuse an option MMEngine split at its commas into a list of texts for a setting that
    holds one path (by its key's name: ``*_root``, ``*_file``, ``load_from``, ...; a path with
    a comma: the run failed on a list, far from the option), unless the config holds a list
    there. ``genview.*`` settings have their own checks (:func:`apply_genview_settings`)."""
    for key, value in options.items():
        texts = isinstance(value, (list, tuple)) and len(value) > 1 and \
            all(isinstance(v, str) for v in value)
        last = key.rsplit('.', 1)[-1]
        if key.startswith('genview.') or not texts or not (
                last in _PATH_KEYS or last.endswith(_PATH_ENDINGS)):
            continue
        try:
            current = dotted_get(cfg, key)
        except KeyError:
            current = None
        if not isinstance(current, (list, tuple)):
            raise GenViewSettingError(
                f'--cfg-options {key}: MMEngine split the value at its comma into {list(value)}, '
                f'where the config has a path or text; quote it to keep it whole: '
                f"--cfg-options '{key}=\"{','.join(value)}\"'")


def misspelt_option_keys(cfg, options: dict) -> List[str]:
    """One line per ``--cfg-options`` key the config does not hold whose first missing part is
    close to a name at that level (``optim_wraper``): MMEngine adds it as a new setting, and the
    one meant is left unchanged. A new key with no near name (``init_cfg`` where a config has
    none) is taken as meant; ``genview.*`` keys are checked by :func:`apply_genview_settings`,
    a part under a list or a value is left to MMEngine's merge."""
    lines = []
    for key in options:
        if key.split('.')[0] == 'genview':
            continue
        try:
            dotted_get(cfg, key)
            continue
        except KeyError as exc:
            missing = exc.args[0]
        above, _, part = missing.rpartition('.')
        parent = dotted_get(cfg, above) if above else cfg
        names = [str(k) for k in parent.keys()] if hasattr(parent, 'keys') else []
        for near in difflib.get_close_matches(part, [n for n in names if n != part], n=1,
                                              cutoff=0.75):
            lines.append(f'--cfg-options {key}: the config has no {missing!r}, so it is added '
                         f'as a new setting and {".".join(filter(None, (above, near)))!r} '
                         'stays as it is: is that a misspelling?')
    return lines


class ConfigLoadError(GenViewSettingError):
    """The config file (or a base it inherits) cannot be read or run: a syntax error, a
    missing ``_base_``, a failing import; one line, exit status 2, as the other config errors."""


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile`` + ``--cfg-options`` + the config's ``genview`` settings.

    Args:
        path (str): config file (``genview_mm::`` bases resolve: ``genview_mm`` is imported).
        cfg_options (dict, optional): overrides, as ``--cfg-options`` gives them.

    Returns:
        Config: the config with :func:`genview_mm.apis.apply_genview_settings` applied.

    Raises:
        ConfigLoadError: MMEngine cannot load the file (its error, named, in one line).
        GenViewSettingError: an option or a ``genview`` setting is refused.
    """
    try:
        cfg = Config.fromfile(path)
    except Exception as exc:  # noqa: BLE001  (a config is code: whatever it raises is its own)
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else 'no detail'
        if isinstance(exc, SyntaxError):  # MMEngine parses the text: no file name in it
            detail = f'{exc.msg}, line {exc.lineno}'
        raise ConfigLoadError(f'config {path} cannot be loaded ({type(exc).__name__}: '
                              f'{detail}): fix it or its _base_ files') from exc
    if cfg_options:
        refuse_split_paths(cfg, cfg_options)
        if is_first_rank():
            try:  # a warning: it never stops a load (MMEngine's merge names what is wrong)
                lines = misspelt_option_keys(cfg, cfg_options)
            except Exception:  # noqa: BLE001  (a key through a value that is no container)
                lines = []
            for line in lines:  # one process says it
                print_log(line, logger='current', level=logging.WARNING)
        try:
            cfg.merge_from_dict(cfg_options)
        except (KeyError, AttributeError, TypeError) as exc:  # an index past a list's end,
            detail = str(exc.args[0] if exc.args else exc)    # a list item set to None
            raise GenViewSettingError(
                f'--cfg-options {" ".join(f"{k}={v!r}" for k, v in cfg_options.items())} '
                f'cannot be applied to {path} ({type(exc).__name__}: '
                f'{detail.split(" of list ")[0][:200]}): check the key against the config '
                '(a list item by its index, from 0)') from None
    apply_genview_settings(cfg)
    return cfg
