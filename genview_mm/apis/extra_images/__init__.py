"""The extra real images of the data-expansion baselines (ImageNet-1K plus as many other images
as GenView has views): a seeded, streamed sample that excludes ImageNet's own images, written as
the annotation list the ``configs/expansion/`` configs read."""
from .candidates import OutsideDataRoot, check_source
from .exclusion import ImageNetIndex
from .image_list import count_list_images, write_image_list
from .reservoir import KeyedReservoir, item_key
from .sampling import NotEnoughImages, SampleReport, default_data_root, sample_extra_images

__all__ = ['ImageNetIndex', 'KeyedReservoir', 'item_key', 'NotEnoughImages', 'SampleReport',
           'sample_extra_images', 'default_data_root', 'check_source', 'OutsideDataRoot',
           'write_image_list', 'count_list_images']
