# GenView + tiny MoCo v2 (configs/demo/mocov2_r18_tiny_cpu.py) for the demo and the tests: the
# delta of configs/genview_mocov2_r50_in1k.py, with the CLIP-style scorer (the demo's tiny CLIP,
# or a real one) instead of the ConvNeXt. Set the paths:
#   --cfg-options train_dataloader.dataset.data_root=IMAGES genview.manifest=VIEWS/manifest.jsonl \
#       model.scorer.encoder=CLIP_DIR model.scorer.pca_path=PCA_FILE
_base_ = ['./mocov2_r18_tiny_cpu.py', '../_base_/genview_defaults.py']

model = dict(type='GenViewMoCo', scorer=_base_.clip_vit_b32_scorer)
data_preprocessor = dict(mean=_base_.clip_mean, std=_base_.clip_std)
train_pipeline = [_base_.train_pipeline[0],
                  dict(_base_.train_pipeline[1], type='GenViewPairDataset'),
                  dict(_base_.train_pipeline[2], algorithm_keys=_base_.genview_keys)]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = [dict(type='GenViewPairHook')]
