# A tiny MoCo v2 (ResNet-18 layout, 8 base channels, 32-px views) that trains in seconds on a CPU.
# Used by the smoke tests and as the smallest real job; the ImageNet config is
# configs/genview_mocov2_r50_in1k.py. Point `train_dataloader.dataset.data_root` at an image folder:
#   python tools/train.py configs/demo/mocov2_r18_tiny_cpu.py \
#       --cfg-options train_dataloader.dataset.data_root=/path/to/images
_base_ = 'mmpretrain::mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py'
# (tools/train.py imports genview_mm itself; custom_imports comes with the GenView configs)

model = dict(
    queue_len=64,
    feat_dim=32,
    backbone=dict(depth=18, stem_channels=8, base_channels=8),
    neck=dict(in_channels=64, hid_channels=64, out_channels=32))

view_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.), backend='pillow'),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4,
                          hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root='data/demo_images',
        with_label=False,
        pipeline=train_pipeline))

optim_wrapper = dict(optimizer=dict(lr=0.03 * 8 / 256))
train_cfg = dict(max_epochs=2)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=2, by_epoch=True, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=3))
randomness = dict(seed=0)
