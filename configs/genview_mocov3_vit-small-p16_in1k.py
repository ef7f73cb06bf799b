# GenView + MoCo v3, ViT-S/16, ImageNet-1K, 300 epochs, 16 GPUs x 256, AMP (paper: 74.5 linear).
#   NNODES=2 ... bash tools/dist_train.sh configs/genview_mocov3_vit-small-p16_in1k.py 8
_base_ = ['mmpretrain::mocov3/mocov3_vit-small-p16_16xb256-amp-coslr-300e_in1k.py',
          './_base_/genview_defaults.py']

model = dict(type='GenViewMoCoV3', scorer=_base_.convnext_scorer)
data_preprocessor = dict(mean=_base_.clip_mean, std=_base_.clip_std)
# upstream's MultiView becomes GenViewPairDataset (manifest and prob: `genview` settings)
train_pipeline = [_base_.train_pipeline[0],
                  dict(_base_.train_pipeline[1], type='GenViewPairDataset'),
                  dict(_base_.train_pipeline[2], algorithm_keys=_base_.genview_keys)]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = [dict(type='GenViewPairHook')]
