# GenView + SimSiam, ResNet-50, ImageNet-1K, 200 epochs, 8 GPUs x 32 (paper: 72.2 linear).
_base_ = [
    'mmpretrain::simsiam/simsiam_resnet50_8xb32-coslr-200e_in1k.py',
    './_base_/genview_defaults.py',
]

model = dict(type='GenViewSimSiam', scorer={{_base_.scorer}})
train_pipeline = [
    dict(type='GenViewPairDataset', manifest={{_base_.genview_manifest}},
         prob={{_base_.genview_prob}}, view_pipelines=[{{_base_.view_pipeline}}]),
    dict(type='PackInputs', meta_keys={{_base_.genview_meta_keys}}),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = [
    dict(type='SimSiamHook', priority='HIGH', fix_pred_lr=True, lr={{_base_.lr}}),
    dict(type='GenViewPairHook'),
]
