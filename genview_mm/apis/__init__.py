"""What the tools call: the application layer above the library (as mmdetection's ``apis``).

- :mod:`.config`: load a config the way every tool does (``--cfg-options``, ``genview`` settings);
- :mod:`.launch`: build the MMEngine runner (distributed set-up on CPU and GPU, SyncBN on CPU);
- :mod:`.preflight`: check what a config needs before anything heavy is built;
- :mod:`.pca_fit` / :mod:`.pca_encoder`: fit a foreground PCA over a folder of images;
- :mod:`.pair_samples`: score sample pairs for ``tools/visualize_pairs.py``;
- :mod:`.extra_images`: draw the extra real images of the data-expansion baselines
  (``tools/sample_extra_images.py``);
- :mod:`.generation`: the view-generation job (fixed shards, resume, merge;
  ``tools/generate_views.py``); :mod:`.import_views`: the released-views import.

Nothing below this package imports it.
"""
from .config import load_config
from .genview_settings import PAIR_SETTINGS, GenViewSettingError, apply_genview_settings

__all__ = ['load_config', 'PAIR_SETTINGS', 'GenViewSettingError', 'apply_genview_settings']
