# GenView + MoCo v3, ViT-S/16, ImageNet-1K, 300 epochs, 16 GPUs x 256, AMP (paper: 74.5 linear).
#   NNODES=2 ... bash tools/dist_train.sh configs/genview_mocov3_vit-small-p16_in1k.py 8
_base_ = [
    'mmpretrain::mocov3/mocov3_vit-small-p16_16xb256-amp-coslr-300e_in1k.py',
    './_base_/genview_defaults.py',
]

model = dict(type='GenViewMoCoV3', scorer={{_base_.scorer}})
train_pipeline = [
    dict(type='GenViewPairDataset', manifest={{_base_.genview_manifest}},
         prob={{_base_.genview_prob}},
         view_pipelines=[{{_base_.view_pipeline1}}, {{_base_.view_pipeline2}}]),
    dict(type='PackInputs', meta_keys={{_base_.genview_meta_keys}}),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = {{_base_.genview_hooks}}
