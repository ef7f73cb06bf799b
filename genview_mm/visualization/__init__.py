"""Pictures for checking GenView by eye: foreground-mask contact sheets (PCA fits) and grids
of scored positive pairs (paper Fig. 5)."""
from .contact_sheet import contact_sheet, save_contact_sheet
from .pair_grid import is_pair_grid, render_pair_grid, views_to_uint8

__all__ = ['contact_sheet', 'save_contact_sheet', 'render_pair_grid', 'views_to_uint8',
           'is_pair_grid']
