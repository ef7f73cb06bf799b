# What every GenView pretraining config adds to its upstream MMPretrain config.
# Data layout (docs/pretraining_and_the_loss.md, "Data layout"):
#   data/imagenet/                      ImageNet-1K, as upstream MMPretrain expects it
#   data/genview/views/manifest.jsonl   views + manifest (tools/generate_views.py or
#                                       tools/import_views.py for the released views)
#   data/genview/pca/*.pth              the scorer's foreground PCA (configs/_base_/scorers/)
# Change a setting in a child config or on the command line, e.g.
#   genview = dict(manifest='/x/manifest.jsonl')        --cfg-options genview.manifest=/x/m.jsonl
#   model = dict(scorer=dict(pca_path='/x/pca.pth'))    --cfg-options model.scorer.pca_path=...
#   model = dict(normalize='global')   # weights over the global batch instead of per GPU
_base_ = ['./clip_normalization.py', './scorers/convnext_base_w_laion2b_augreg.py',
          './scorers/clip_vit_b32.py']
custom_imports = dict(imports=['genview_mm'], allow_failed_imports=False)

# GenViewPairDataset settings (genview_mm.apis.apply_genview_settings writes them into the
# pipeline when the config is loaded; prob 1.0 as in the official configs)
genview = dict(manifest='data/genview/views/manifest.jsonl', prob=1.0)
# what GenViewPairDataset adds to each sample, for PackInputs(algorithm_keys=...)
genview_keys = ('genview_slot', 'genview_noise_level', 'genview_fallback')
