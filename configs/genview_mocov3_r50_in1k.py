# GenView + MoCo v3, ResNet-50, ImageNet-1K, 100 epochs, 8 GPUs x 512, AMP, LARS
# (paper: 72.7 linear top-1).   bash tools/dist_train.sh configs/genview_mocov3_r50_in1k.py 8
# For 300 epochs (paper: 74.8) use configs/genview_mocov3_r50_300e_in1k.py.
_base_ = ['mmpretrain::mocov3/mocov3_resnet50_8xb512-amp-coslr-100e_in1k.py',
          './_base_/genview_defaults.py']

model = dict(type='GenViewMoCoV3', scorer=_base_.convnext_scorer)
data_preprocessor = dict(mean=_base_.clip_mean, std=_base_.clip_std)
# upstream's MultiView becomes GenViewPairDataset (manifest and prob: `genview` settings)
train_pipeline = [_base_.train_pipeline[0],
                  dict(_base_.train_pipeline[1], type='GenViewPairDataset'),
                  dict(_base_.train_pipeline[2], algorithm_keys=_base_.genview_keys)]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = [dict(type='GenViewPairHook')]
