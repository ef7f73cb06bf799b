# GenView + SwAV, ResNet-50, ImageNet-1K, 200 epochs, multi-crop 2x224 + 6x96 (paper: 71.7).
# The generated view is one of the two 224-px crops; the six 96-px crops come from the original
# (the authors do not specify this; see GenViewSwAV for how pair weights reach every crop).
_base_ = ['mmpretrain::swav/swav_resnet50_8xb32-mcrop-coslr-200e_in1k-224px-96px.py',
          './_base_/genview_defaults.py']

model = dict(type='GenViewSwAV', scorer=_base_.convnext_scorer,  # SwAV normalises in model
             data_preprocessor=dict(mean=_base_.clip_mean, std=_base_.clip_std))
# upstream's top-level one too (unused while the model has its own, but read by whoever edits it)
data_preprocessor = dict(mean=_base_.clip_mean, std=_base_.clip_std)
# upstream's MultiView becomes GenViewPairDataset (manifest and prob: `genview` settings)
train_pipeline = [_base_.train_pipeline[0],
                  dict(_base_.train_pipeline[1], type='GenViewPairDataset'),
                  dict(_base_.train_pipeline[2], algorithm_keys=_base_.genview_keys)]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = [*_base_.custom_hooks, dict(type='GenViewPairHook')]
