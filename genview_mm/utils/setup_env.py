"""``register_all_modules``, as every OpenMMLab package has one in its ``utils``.

MMEngine calls ``genview_mm.utils.register_all_modules(False)`` itself when a registry of the
``genview_mm`` scope is first used (a config inheriting ``genview_mm::...`` tags its entries
with that scope); scripts may call it too.
"""
import datetime
import warnings


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register MMPretrain's and genview_mm's modules into the registries.

    Args:
        init_default_scope (bool): set the default scope to ``'mmpretrain'`` (genview_mm
            registers into MMPretrain's registries), as ``mmpretrain.utils.register_all_modules``
            does. Defaults to True.
    """
    from mmengine.registry import DefaultScope
    from mmpretrain.utils import register_all_modules as register_mmpretrain

    register_mmpretrain(init_default_scope=False)
    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None:
        DefaultScope.get_instance('mmpretrain', scope_name='mmpretrain')
    elif current.scope_name != 'mmpretrain':
        warnings.warn(f'The current default scope "{current.scope_name}" is not "mmpretrain": '
                      '`register_all_modules` opens a new scope "mmpretrain".')
        DefaultScope.get_instance(f'mmpretrain-{datetime.datetime.now()}',
                                  scope_name='mmpretrain')
