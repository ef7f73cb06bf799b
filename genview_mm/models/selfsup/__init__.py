"""Thin GenView variants of upstream MMPretrain self-supervised algorithms."""
from .byol import GenViewBYOL
from .genview_mixin import GenViewMixin
from .mocov2 import GenViewMoCo
from .mocov3 import GenViewMoCoV3
from .simclr import GenViewSimCLR
from .simsiam import GenViewSimSiam
from .swav import GenViewSwAV

__all__ = ['GenViewMixin', 'GenViewMoCo', 'GenViewMoCoV3', 'GenViewBYOL', 'GenViewSimSiam',
           'GenViewSimCLR', 'GenViewSwAV']
