# GenView + BYOL, ResNet-50, ImageNet-1K, 200 epochs, 16 GPUs x 256, LARS (paper: 73.2 linear).
_base_ = ['mmpretrain::byol/byol_resnet50_16xb256-coslr-200e_in1k.py',
          './_base_/genview_defaults.py']

model = dict(type='GenViewBYOL', scorer=_base_.convnext_scorer)
data_preprocessor = dict(mean=_base_.clip_mean, std=_base_.clip_std)
# upstream's MultiView becomes GenViewPairDataset (manifest and prob: `genview` settings)
train_pipeline = [_base_.train_pipeline[0],
                  dict(_base_.train_pipeline[1], type='GenViewPairDataset'),
                  dict(_base_.train_pipeline[2], algorithm_keys=_base_.genview_keys)]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = [dict(type='GenViewPairHook')]
