# GenView + MoCo v2, ResNet-50, ImageNet-1K, 200 epochs, 8 GPUs x 32 (paper: 70.0 linear top-1).
#   bash tools/dist_train.sh configs/genview_mocov2_r50_in1k.py 8
_base_ = ['mmpretrain::mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py',
          './_base_/genview_defaults.py']

model = dict(type='GenViewMoCo', scorer=_base_.convnext_scorer)
data_preprocessor = dict(mean=_base_.clip_mean, std=_base_.clip_std)
# upstream's MultiView becomes GenViewPairDataset (manifest and prob: `genview` settings)
train_pipeline = [_base_.train_pipeline[0],
                  dict(_base_.train_pipeline[1], type='GenViewPairDataset'),
                  dict(_base_.train_pipeline[2], algorithm_keys=_base_.genview_keys)]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = [dict(type='GenViewPairHook')]
