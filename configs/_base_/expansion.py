# The extra set of the data-expansion baselines (docs/reproducing_the_paper.md): unlabelled real
# images listed by tools/sample_extra_images.py, as many as GenView has views (one per ImageNet-1K
# train image). A config concatenates it with its method's ImageNet train set and gives it that
# set's pipeline: dict(_base_.extra_images, pipeline=...), as the last of its datasets (the
# preflight takes the last one for the extra set).
#   python tools/sample_extra_images.py data/extra_images \
#       --imagenet data/imagenet/train data/imagenet/val --num 1281167 \
#       --out data/expansion/extra_images.txt
# Other paths: --cfg-options train_dataloader.dataset.datasets.1.data_prefix.img_path=DIR
#   train_dataloader.dataset.datasets.1.ann_file=LIST

# how many images the extra list must hold (the preflight checks it)
expansion = dict(num_extra=1281167)
extra_images = dict(type='CustomDataset',
                    data_prefix=dict(img_path='data/extra_images/'),
                    ann_file='data/expansion/extra_images.txt',
                    with_label=False)
