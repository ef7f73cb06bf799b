# GenView + SimCLR, ResNet-50, ImageNet-1K, 200 epochs, 16 GPUs x 256, LARS.
# Pair weight w_i weights both NT-Xent rows of pair i (see GenViewSimCLR).
_base_ = [
    'mmpretrain::simclr/simclr_resnet50_16xb256-coslr-200e_in1k.py',
    './_base_/genview_defaults.py',
]

model = dict(type='GenViewSimCLR', scorer={{_base_.scorer}})
train_pipeline = [
    dict(type='GenViewPairDataset', manifest={{_base_.genview_manifest}},
         prob={{_base_.genview_prob}}, view_pipelines=[{{_base_.view_pipeline}}]),
    dict(type='PackInputs', meta_keys={{_base_.genview_meta_keys}}),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = {{_base_.genview_hooks}}
