# GenView + tiny MoCo v2 (configs/demo/mocov2_r18_tiny_cpu.py) for the demo and the tests: the
# same delta that configs/genview_mocov2_r50_in1k.py applies to upstream MoCo v2. Set the paths:
#   --cfg-options train_dataloader.dataset.data_root=IMAGES \
#       train_dataloader.dataset.pipeline.0.manifest=VIEWS/manifest.jsonl \
#       model.scorer.encoder=CLIP_DIR model.scorer.pca_path=PCA_FILE
_base_ = ['./mocov2_r18_tiny_cpu.py', '../_base_/genview_defaults.py']

model = dict(type='GenViewMoCo', scorer={{_base_.scorer}})
train_pipeline = [
    dict(type='GenViewPairDataset', manifest={{_base_.genview_manifest}},
         prob={{_base_.genview_prob}}, view_pipelines=[{{_base_.view_pipeline}}]),
    dict(type='PackInputs', meta_keys={{_base_.genview_meta_keys}}),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = {{_base_.genview_hooks}}
