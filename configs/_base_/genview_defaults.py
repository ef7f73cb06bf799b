# What every GenView pretraining config adds to its upstream MMPretrain config.
# Data layout (see README, "Data layout"):
#   data/imagenet/                      ImageNet-1K, as upstream MMPretrain expects it
#   data/genview/views/manifest.jsonl   generated views + manifest (tools/generate_views.py)
#   data/genview/pca/clip-vit-b32.pth   scorer PCA file (tools/fit_foreground_pca.py)
# Override on the command line, e.g.
#   --cfg-options train_dataloader.dataset.pipeline.0.manifest=/x/manifest.jsonl \
#                 model.scorer.pca_path=/x/pca.pth
custom_imports = dict(imports=['genview_mm'], allow_failed_imports=False)

genview_manifest = 'data/genview/views/manifest.jsonl'
genview_prob = 1.0
scorer = dict(
    type='PairQualityScorer',
    pca_path='data/genview/pca/clip-vit-b32.pth',
    encoder='openai/clip-vit-base-patch32',
    gamma=1.0,
    normalize='global')

# PackInputs keys that carry how each pair was built (read by GenViewPairHook)
genview_meta_keys = ('sample_idx', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                     'flip_direction', 'genview_slot', 'genview_noise_level', 'genview_fallback')
genview_hooks = [dict(type='GenViewPairHook')]  # children set custom_hooks (upstream hooks + this)
