# GenView + MoCo v2, ResNet-50, ImageNet-1K, 200 epochs, 8 GPUs x 32 (paper: 70.0 linear top-1).
#   bash tools/dist_train.sh configs/genview_mocov2_r50_in1k.py 8
_base_ = [
    'mmpretrain::mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py',
    './_base_/genview_defaults.py',
]

model = dict(type='GenViewMoCo', scorer={{_base_.scorer}})
train_pipeline = [
    dict(type='GenViewPairDataset', manifest={{_base_.genview_manifest}},
         prob={{_base_.genview_prob}}, view_pipelines=[{{_base_.view_pipeline}}]),
    dict(type='PackInputs', meta_keys={{_base_.genview_meta_keys}}),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = {{_base_.genview_hooks}}
