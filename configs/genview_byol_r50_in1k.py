# GenView + BYOL, ResNet-50, ImageNet-1K, 200 epochs, 16 GPUs x 256, LARS (paper: 73.2 linear).
_base_ = [
    'mmpretrain::byol/byol_resnet50_16xb256-coslr-200e_in1k.py',
    './_base_/genview_defaults.py',
]

model = dict(type='GenViewBYOL', scorer={{_base_.scorer}})
train_pipeline = [
    dict(type='GenViewPairDataset', manifest={{_base_.genview_manifest}},
         prob={{_base_.genview_prob}},
         view_pipelines=[{{_base_.view_pipeline1}}, {{_base_.view_pipeline2}}]),
    dict(type='PackInputs', meta_keys={{_base_.genview_meta_keys}}),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = {{_base_.genview_hooks}}
