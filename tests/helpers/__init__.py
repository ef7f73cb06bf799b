"""Shared test helpers (``from helpers import ...``; ``tests/`` is on the path, see pytest.ini).

- :mod:`helpers.tools`: run a tool as a subprocess (:func:`run_tool`, :func:`run_cmd`, the
  environment :func:`tool_env`) or in this process (:func:`load_tool`, :func:`run_script`); a
  free TCP port; the rows of MMEngine's ``scalars.json``.
- :mod:`helpers.data`: photos, class folders, a toy COCO set, fake views manifests, PCA files.
- :mod:`helpers.dist`: several forked processes in one gloo group.
"""
from .data import (  # noqa: F401
                   CLASS_COLOURS,
                   photos_with_views,
                   sample_photos,
                   save_backbone_checkpoint,
                   save_pca,
                   save_tiny_clip_vision,
                   save_tiny_unclip,
                   write_class_folders,
                   write_coco_shapes,
                   write_fake_manifest,
                   write_photos,
                   zero_tensor_bytes,
)
from .tools import (  # noqa: F401
                   DIST_VARS,
                   ROOT,
                   TOOLS,
                   ToolRun,
                   checkout_root,
                   free_port,
                   load_tool,
                   run_cmd,
                   run_script,
                   run_tool,
                   scalar_rows,
                   tool_cmd,
                   tool_env,
)
