# The data-expansion baseline (configs/expansion/mocov2_r50_in1k-plus-extra.py) on the tiny MoCo v2
# of configs/demo/mocov2_r18_tiny_cpu.py: its image folder plus an extra set, drawn by
#   python tools/sample_extra_images.py data/demo_extra_images --imagenet data/demo_images \
#       --num 16 --out data/demo_extra_images.txt
# concatenated, and half its epochs (two sources: twice the images per epoch). Set the paths:
#   --cfg-options train_dataloader.dataset.datasets.0.data_root=IMAGES \
#       train_dataloader.dataset.datasets.1.data_prefix.img_path=EXTRA \
#       train_dataloader.dataset.datasets.1.ann_file=LIST expansion.num_extra=N
_base_ = ['./mocov2_r18_tiny_cpu.py', '../_base_/expansion.py']

expansion = dict(num_extra=16)
train_dataloader = dict(dataset=dict(
    _delete_=True,
    type='ConcatDataset',
    ignore_keys=['classes'],
    datasets=[
        _base_.train_dataloader.dataset,
        dict(_base_.extra_images, pipeline=_base_.train_dataloader.dataset.pipeline,
             data_prefix=dict(img_path='data/demo_extra_images/'),
             ann_file='data/demo_extra_images.txt'),
    ]))
train_cfg = dict(max_epochs=1)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=1, by_epoch=True, begin=0, end=1)]
