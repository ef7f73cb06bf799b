# GenView + SwAV, ResNet-50, ImageNet-1K, 200 epochs, multi-crop 2x224 + 6x96 (paper: 71.7).
# The generated view is one of the two 224-px crops; the six 96-px crops come from the original
# (the authors do not specify this; see GenViewSwAV for how pair weights reach every crop).
_base_ = [
    'mmpretrain::swav/swav_resnet50_8xb32-mcrop-coslr-200e_in1k-224px-96px.py',
    './_base_/genview_defaults.py',
]

model = dict(type='GenViewSwAV', scorer={{_base_.scorer}})
train_pipeline = [
    dict(type='GenViewPairDataset', manifest={{_base_.genview_manifest}},
         prob={{_base_.genview_prob}}, view_pipelines=[{{_base_.view_pipeline1}}],
         extra_views=dict(num_views=6, pipeline={{_base_.view_pipeline2}})),
    dict(type='PackInputs', meta_keys={{_base_.genview_meta_keys}}),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = [
    dict(type='SwAVHook', priority='VERY_HIGH', batch_size={{_base_.batch_size}},
         epoch_queue_starts=15, crops_for_assign=[0, 1], feat_dim=128, queue_length=3840,
         frozen_layers_cfg=dict(prototypes=5005)),
    dict(type='GenViewPairHook'),
]
