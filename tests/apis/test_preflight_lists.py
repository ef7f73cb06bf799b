"""The preflight reads a dataset as MMPretrain's CustomDataset family will: a list's lines in the
form its with_label asks, a folder's images by the class's extensions, ImageNet's class folders.
Each of these passed the preflight and then failed when the dataset was built or first read."""
import os
import os.path as osp

import pytest

from genview_mm.apis.preflight.checklist import OK
from genview_mm.apis.preflight.data_checks import check_dataset
from helpers import write_photos


@pytest.fixture
def images(tmp_path):
    root = str(tmp_path / 'data')
    names = [osp.relpath(p, root) for p in write_photos(osp.join(root, 'n01'), 3, size=16)]
    return root, names


def write_list(tmp_path, lines):
    path = str(tmp_path / 'list.txt')
    with open(path, 'w') as f:
        f.writelines(line + '\n' for line in lines)
    return path


def only(checks):
    assert len(checks) == 1, checks
    return checks[0]


@pytest.mark.parametrize('with_label, labelled, ok', [
    (None, True, True), (False, False, True), (None, False, False), (False, True, False)])
def test_a_list_in_the_form_with_label_reads(tmp_path, images, with_label, labelled, ok):
    root, names = images
    ann = write_list(tmp_path, [f'{n} 0' if labelled else n for n in names])
    ds = dict(type='CustomDataset', data_root=root, ann_file=ann)
    if with_label is not None:
        ds['with_label'] = with_label
    check = only(check_dataset('train_dataloader.dataset', ds))
    if ok:
        assert check.status == OK, check
    elif labelled:
        assert (check.status, check.detail) == ('BROKEN', (
            f"{ann} line 1 ('{names[0]} 0') ends in a label, but with_label=False reads each "
            'line whole as an image path: set with_label=True, or list paths only'))
    else:
        assert (check.status, check.detail) == ('BROKEN', (
            f"{ann} line 1 ('{names[0]}') has no label, but CustomDataset (with_label=True) "
            "reads 'PATH LABEL' lines: label every line, or set with_label=False for a list "
            'of paths'))


def test_every_line_of_a_list_is_in_the_form(tmp_path, images):
    """The form was checked on the first 10 lines: an unlabelled line further on passed, and
    MMPretrain stopped at build ('not enough values to unpack'). A blank line in a list of
    paths passed too (MMPretrain reads it as the image folder: IsADirectoryError in training);
    '+1' is a label, as int() reads it."""
    root, names = images
    lines = [f'{names[i % 3]} +1' for i in range(30)]
    ann = write_list(tmp_path, lines[:20] + [names[0]] + lines[20:])
    check = only(check_dataset('k', dict(type='CustomDataset', data_root=root, ann_file=ann)))
    assert (check.status, check.detail.split(', but')[0]) == (
        'BROKEN', f"{ann} line 21 ('{names[0]}') has no label")
    ann = write_list(tmp_path, [names[i % 3] for i in range(12)] + ['', names[0]])
    ds = dict(type='CustomDataset', data_root=root, ann_file=ann, with_label=False)
    check = only(check_dataset('k', ds))
    assert (check.status, check.detail) == (
        'BROKEN', f'{ann} line 13 is blank, but with_label=False reads each line whole as an '
        'image path: remove or fix that line')
    ann = write_list(tmp_path, names + ['# drawn 2026'])
    check = only(check_dataset('k', dict(ds, ann_file=ann)))
    assert (check.status, check.detail.split(':')[0]) == (
        'BROKEN', f"{ann} line 4 ('# drawn 2026') is a comment, but with_label=False reads each "
        'line whole as an image path')


def test_a_comment_or_blank_line_in_a_labelled_list(tmp_path, images):
    """A '#' line (a comment to our tools, an image to MMPretrain, whose lists have none) was
    reported as 'has no label', even with a label ('# n01/x.jpg 3'), and a blank line too: each
    is now named for what it is. '#tag.jpg 0' is an image where that file exists."""
    root, names = images
    ds = dict(type='CustomDataset', data_root=root)
    for extra, what in (('# n01/x.jpg 3', 'is a comment'), ('#', 'is a comment'),
                        ('', 'is blank')):
        ann = write_list(tmp_path, [f'{n} 0' for n in names] + [extra])
        check = only(check_dataset('k', dict(ds, ann_file=ann)))
        assert (check.status, check.detail.split(', but')[0]) == (
            'BROKEN', f"{ann} line 4 ({extra!r}) {what}"), check.detail
    assert check.detail.endswith("reads 'PATH LABEL' lines: label every line, or set "
                                 'with_label=False for a list of paths')
    os.rename(osp.join(root, names[0]), osp.join(root, 'n01', '#tag.jpg'))
    ann = write_list(tmp_path, [f'{n} 0' for n in ['n01/#tag.jpg'] + names[1:]] + ['#x.jpg 1'])
    check = only(check_dataset('k', dict(ds, ann_file=ann)))
    assert (check.status, check.detail) == ('BROKEN', (
        f"{ann} line 4 ('#x.jpg 1') is a comment, but CustomDataset reads every line as 'PATH "
        "LABEL' (MMPretrain's lists have no comments): remove that line"))


def test_a_key_the_dataset_class_does_not_take(tmp_path, images):
    """A config inheriting ours that changed only the dataset's type to CustomDataset kept the
    base's split='train' (configs merge): the preflight said OK, the build a TypeError. Asked
    of the class: its __init__ and those its **kwargs reach."""
    from mmpretrain.datasets import CustomDataset, ImageNet

    from genview_mm.utils.config_keys import unknown_arguments
    root, names = images
    ds = dict(type='CustomDataset', data_root=root, split='train', _scope_='mmpretrain')
    check = only(check_dataset('k', ds))
    assert (check.status, check.detail) == ('BROKEN', (
        "CustomDataset takes no 'split' (a key of the base config's dataset, kept when a config "
        'changes only its type?): give the dataset dict _delete_=True and all of its keys, its '
        'pipeline too'))
    assert unknown_arguments(CustomDataset, dict(ds, lazy_init=True, serialize_data=False,
                                                 sprit=1)) == ['split', 'sprit']
    assert unknown_arguments(ImageNet, dict(ds, max_refetch=3)) == []  # ImageNet's split

    class Mine(CustomDataset):  # a user's class may read keys of its **kwargs itself
        def __init__(self, **kwargs):
            self.split = kwargs.pop('split')
            super().__init__(**kwargs)
    assert unknown_arguments(Mine, ds) == []


def test_the_imagenet_test_split_reads_paths_only(tmp_path, images):
    root, names = images
    ann = write_list(tmp_path, names)
    ds = dict(type='ImageNet', split='test', data_root=root, data_prefix=root, ann_file=ann)
    assert only(check_dataset('test_dataloader.dataset', ds)).status == OK


def test_an_ann_file_that_is_a_folder_is_named_as_one(tmp_path, images):
    """ann_file given the images' folder (data_prefix's place) was 'not found', though it is
    there: the fix looked for a missing file."""
    root, _ = images
    ds = dict(type='CustomDataset', data_root=root, ann_file='n01')
    check = only(check_dataset('k', ds))
    assert (check.status, check.detail) == ('BROKEN', (
        f'annotation file {osp.join(root, "n01")} is a folder, not a list of images (ann_file '
        'names the list; the folder of the images is data_prefix)'))


def test_a_folder_of_images_mmpretrain_does_not_read(tmp_path):
    from PIL import Image
    root = tmp_path / 'webp'
    (root / 'c').mkdir(parents=True)
    Image.new('RGB', (8, 8)).save(root / 'c' / 'a.webp')
    check = only(check_dataset('k', dict(type='CustomDataset', data_root=str(root))))
    assert check.status == 'BROKEN'
    assert check.detail.startswith(f'image folder {root} holds no images CustomDataset reads '
                                   '(.jpg, .jpeg, .png, .ppm, .bmp, .pgm, .tif')


def test_imagenet_without_a_list_needs_its_class_folders(tmp_path, images):
    root, _ = images  # one class folder, n01/
    ds = dict(type='ImageNet', data_root=root, data_prefix='')
    check = only(check_dataset('k', ds))
    assert (check.status, check.detail) == ('BROKEN', (
        f'{root} has 1 class folder, but ImageNet without an annotation list reads its 1000 '
        'classes from as many folders: give the list (ann_file, e.g. meta/train.txt), or the '
        'folder of the 1000 class folders'))
    flat = str(tmp_path / 'flat')  # raw ILSVRC val: 50,000 images side by side, no folders
    write_photos(flat, 2, size=16)
    check = only(check_dataset('k', dict(type='ImageNet', data_root=flat, data_prefix='')))
    assert check.status == 'BROKEN' and check.detail.startswith(f'{flat} has 0 class folders')


def test_classes_from_a_file_are_not_counted_as_its_characters(tmp_path, images):
    """metainfo.classes may name a file of class names: its length is not a class count."""
    root, _ = images
    ds = dict(type='CustomDataset', data_root=root, metainfo=dict(classes='classes.txt'))
    assert only(check_dataset('k', ds)).status == OK
    ds['metainfo'] = dict(classes=['a', 'b'])  # two classes, one folder
    check = only(check_dataset('k', ds))
    assert check.status == 'BROKEN' and check.detail.startswith(f'{root} has 1 class folder, '
                                                                'but CustomDataset')


@pytest.mark.parametrize('spelling', ['ImageNet', 'mmpretrain.ImageNet', 'class'])
def test_imagenet_split_defaults_whatever_the_type_spelling(tmp_path, spelling):
    """ImageNet's split defaults (split/ folder, meta/<split>.txt) were applied only to the type
    spelt 'ImageNet': 'mmpretrain.ImageNet' (or the class) was read as a folder dataset and its
    data_root's train/, val/, meta/ counted as 3 of 1000 class folders."""
    from mmpretrain.datasets import ImageNet
    root = tmp_path / 'imagenet'
    write_photos(str(root / 'train' / 'n01'), 2, size=16)
    (root / 'val').mkdir()
    (root / 'meta').mkdir()
    (root / 'meta' / 'train.txt').write_text('n01/img_0000.jpg 0\nn01/img_0001.jpg 0\n')
    kind = ImageNet if spelling == 'class' else spelling
    check = only(check_dataset('k', dict(type=kind, data_root=str(root), split='train')))
    assert check.status == OK, check


def test_extensions_are_read_in_any_case(tmp_path, images):
    """MMPretrain lowercases a dataset's extensions: ('.JPEG',) reads .jpg files too."""
    root, _ = images
    ds = dict(type='CustomDataset', data_root=root, extensions=('.JPG',))
    assert only(check_dataset('k', ds)).status == OK


def test_a_list_that_is_not_utf8_is_one_line(tmp_path, images):
    root, names = images
    ann = str(tmp_path / 'list.txt')
    with open(ann, 'wb') as f:
        f.write(f'{names[0]} 0\n'.encode() + b'n01/\xff.jpg 0\n')
    check = only(check_dataset('k', dict(type='CustomDataset', data_root=root, ann_file=ann)))
    assert check.status == 'BROKEN' and check.detail.startswith(f'{ann} is not UTF-8 text')


def test_the_manifest_line_of_a_list_that_is_not_text_is_no_traceback(tmp_path, images):
    """The dataset's line said BROKEN, then the manifest's check read the same list outside
    its error handling: check_config.py ended in a NotText traceback, no checklist."""
    from genview_mm.apis.preflight.manifest_checks import check_manifest
    root, _ = images
    ann = str(tmp_path / 'list.txt')
    with open(ann, 'wb') as f:
        f.write(b'\xff\xd8\xff\xe0 binary\n')
    manifest = tmp_path / 'manifest.jsonl'
    manifest.write_text('')
    ds = dict(type='CustomDataset', data_root=root, ann_file=ann, with_label=False)
    check = check_manifest(str(manifest), ds)
    assert check.status == 'BROKEN' and check.detail == f'{manifest} is empty'


def test_home_paths_are_read_as_mmpretrain_reads_them(tmp_path, images, monkeypatch):
    """MMPretrain expands '~' in a string data_prefix and in ann_file: the preflight said
    MISSING for both, and train.py stopped a run that would have read its data."""
    root, names = images
    monkeypatch.setenv('HOME', str(tmp_path))
    write_list(tmp_path, [f'{n} 0' for n in names])
    ds = dict(type='CustomDataset', data_prefix='~/data', ann_file='~/list.txt')
    assert only(check_dataset('k', ds)).status == OK
    check = only(check_dataset('k', dict(ds, ann_file='~/none.txt')))
    assert check.status == 'MISSING' and str(tmp_path / 'none.txt') in check.detail


def test_class_folders_without_images_are_refused_whatever_lies_beside_them(tmp_path):
    """Empty class folders with the images at the top: MMPretrain reads the class folders only
    ('Found 0 files in subfolders'), but the walk of the whole folder found the top images."""
    root = tmp_path / 'flat'
    write_photos(str(root), 3, size=16)
    (root / 'c1').mkdir()
    (root / 'c2').mkdir()
    check = only(check_dataset('k', dict(type='CustomDataset', data_root=str(root))))
    assert check.status == 'BROKEN' and check.detail.startswith(
        f'image folder {root} holds no images CustomDataset reads ('), check.detail
    assert ') in its class folders: ' in check.detail
    write_photos(str(root / 'c2'), 1, size=16)
    assert only(check_dataset('k', dict(type='CustomDataset', data_root=str(root)))).status == OK


def test_two_spaces_before_a_label_keep_a_space_in_the_path(tmp_path, images):
    """'a.jpg  0': MMPretrain's path is 'a.jpg ' (it splits at the last space), which does not
    exist; the reader trimmed it, so the preflight found the file and said OK."""
    from genview_mm.utils.annotation_list import parse_annotation_line
    assert parse_annotation_line('a/b.jpg  3\n') == ('a/b.jpg ', 3)
    assert parse_annotation_line('a/b.jpg 3') == ('a/b.jpg', 3)
    root, names = images
    ann = write_list(tmp_path, [f'{n}  0' for n in names])
    check = only(check_dataset('k', dict(type='CustomDataset', data_root=root, ann_file=ann)))
    assert check.status == 'BROKEN', check


def test_a_coco_json_named_in_capitals_is_read_as_json(tmp_path):
    """'annotations.JSON' was read as a list of image paths: BROKEN, 'none of 1 sampled images
    listed ... exists (e.g. .../{"images": ...'. MMDetection reads the file by its contents."""
    import shutil

    from genview_mm.demo.coco_shapes import write_coco_shapes
    root = str(tmp_path / 'coco')
    shutil.move(write_coco_shapes(root, 2), osp.join(root, 'annotations.JSON'))
    ds = dict(type='CocoDataset', data_root=root, ann_file='annotations.JSON',
              data_prefix=dict(img='images/'))
    assert only(check_dataset('k', ds)).status == OK
    shutil.rmtree(osp.join(root, 'images'))
    os.makedirs(osp.join(root, 'images'))
    check = only(check_dataset('k', ds))  # the json's images looked up, as for '.json'
    assert check.status == 'BROKEN' and 'images' in check.detail, check


@pytest.mark.parametrize('label', [2, -1])
def test_a_label_beyond_the_fixed_classes(tmp_path, images, label):
    """A label that is not one of the dataset's fixed classes passed the preflight; a
    classifier's loss failed where that line was drawn (a device-side assert on CUDA), maybe
    hours in. Where the labels are not trained on (pretraining) any label passes."""
    root, names = images
    ann = write_list(tmp_path, [f'{names[0]} 0', f'{names[1]} 1', f'{names[2]} {label}'])
    ds = dict(type='CustomDataset', data_root=root, ann_file=ann,
              metainfo=dict(classes=['a', 'b']))
    check = only(check_dataset('k', ds, labels=True))
    assert (check.status, check.detail) == ('BROKEN', (
        f"{ann} line 3 ('{names[2]} {label}') has label {label}, but CustomDataset has 2 "
        'classes (labels 0 to 1): fix that line'))
    assert only(check_dataset('k', ds)).status == OK  # a pretraining set: labels unread
    ds['metainfo'] = dict(classes=['a', 'b', 'c'])
    assert only(check_dataset('k', ds, labels=True)).status == ('BROKEN' if label < 0 else OK)
    check = only(check_dataset('k', ds, labels=2))  # a head with fewer classes: it bounds them
    assert (check.status, check.detail) == ('BROKEN', (
        f"{ann} line 3 ('{names[2]} {label}') has label {label}, but the model's head "
        '(num_classes) has 2 classes (labels 0 to 1): fix that line'))
    assert only(check_dataset('k', ds, labels=5)).status == ('BROKEN' if label < 0 else OK)
    del ds['metainfo']  # classes not fixed: the head's num_classes bound them (a -1 passed)
    assert only(check_dataset('k', ds, labels=True)).status == OK  # the number not known
    assert only(check_dataset('k', ds, labels=3)).status == ('BROKEN' if label < 0 else OK)
    check = only(check_dataset('k', ds, labels=2))
    assert (check.status, check.detail) == ('BROKEN', (
        f"{ann} line 3 ('{names[2]} {label}') has label {label}, but the model's head "
        '(num_classes) has 2 classes (labels 0 to 1): fix that line'))


def test_only_a_classifier_s_train_set_has_its_labels_checked(tmp_path, images):
    """run_preflight checks the labels of the train set of a model with a classification head
    (a linear probe), not of a pretraining model's."""
    from mmengine.config import Config

    from genview_mm.apis.preflight import run_preflight
    root, names = images
    ann = write_list(tmp_path, [f'{n} 5' for n in names])
    ds = dict(type='CustomDataset', data_root=root, ann_file=ann,
              metainfo=dict(classes=['a', 'b']))
    cfg = Config(dict(train_dataloader=dict(dataset=ds), default_scope='mmpretrain',
                      model=dict(type='ImageClassifier', head=dict(num_classes=2)),
                      train_cfg=dict(by_epoch=True, max_epochs=1),
                      optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1))))
    bad = [c for c in run_preflight(cfg) if c.status == 'BROKEN']
    assert [c.detail.split(': ')[0] for c in bad] == [
        f"{ann} line 1 ('{names[0]} 5') has label 5, but CustomDataset has 2 classes (labels "
        '0 to 1)']
    cfg.model = dict(type='MoCo', head=dict(type='ContrastiveHead'))
    assert not [c for c in run_preflight(cfg) if c.status == 'BROKEN']


@pytest.mark.parametrize('with_label', [True, False])
def test_a_list_saved_with_a_byte_order_mark(tmp_path, images, with_label):
    """A list saved as 'UTF-8 with BOM' passed (its first image was rarely among the sampled
    ones); MMPretrain reads the mark as part of the first path, a missing file in training."""
    root, names = images
    lines = [f'{n} 0' if with_label else n for n in names]
    ann = tmp_path / 'list.txt'
    ann.write_text('\ufeff' + '\n'.join(lines) + '\n', encoding='utf-8')
    ds = dict(type='CustomDataset', data_root=root, ann_file=str(ann), with_label=with_label)
    check = only(check_dataset('k', ds))
    assert (check.status, check.detail) == ('BROKEN', (
        f'{ann} starts with a byte-order mark (saved as UTF-8 with BOM), which CustomDataset '
        'reads as part of its first image path: save it as plain UTF-8'))
    # a pipeline that skips a missing image trains on: a note
    ds['pipeline'] = [dict(type='LoadImageFromFile', ignore_empty=True)]
    check = only(check_dataset('k', ds))
    assert (check.status, check.detail) == ('note', (
        f'{ann} starts with a byte-order mark (saved as UTF-8 with BOM), which CustomDataset '
        'reads as part of its first image path: ignore_empty=True skips that image: save it '
        'as plain UTF-8'))
    ann.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    assert only(check_dataset('k', ds)).status == OK


def test_an_indented_hash_line_naming_a_file_is_an_image(tmp_path, images):
    """MMPretrain strips each line before splitting off its label, so '  #tag.jpg 0' is the
    image '#tag.jpg': the preflight must not call it a comment (a false BROKEN stops every
    launcher)."""
    root, names = images
    os.rename(osp.join(root, names[0]), osp.join(root, '#tag.jpg'))
    ann = write_list(tmp_path, ['  #tag.jpg 0'] + [f'{n} 0' for n in names[1:]])
    assert only(check_dataset('k', dict(type='CustomDataset', data_root=root,
                                        ann_file=ann))).status == 'ok'


def test_kwargs_given_to_another_call_are_not_followed_up_the_mro():
    """MMPretrain's TimmClassifier hands its **kwargs to timm.create_model, not to its base's
    __init__: its documented model=dict(type='TimmClassifier', model_name=..., pretrained=...)
    was a false BROKEN, which stops every launcher."""
    from mmpretrain.models import TimmClassifier

    from genview_mm.apis.preflight.model_checks import check_model
    from genview_mm.utils.config_keys import unknown_arguments
    model = dict(type='TimmClassifier', model_name='resnet50', pretrained=True, num_classes=10)
    assert unknown_arguments(TimmClassifier, model) == []
    assert check_model(model) == []
    assert unknown_arguments(TimmClassifier, dict(model, init_cfg=None)) == []


def test_an_mmpretrain_dataset_reads_its_images_from_data_prefix_img_path(tmp_path, images):
    """MMDetection's data_prefix=dict(img=...) in an MMPretrain dataset passed the preflight
    (its folder was there) and MMPretrain's build stopped with KeyError: 'img_path'; beside
    img_path, another key's folder was taken for the one its list's paths are relative to."""
    root, names = images
    ds = dict(type='CustomDataset', data_root=str(tmp_path), data_prefix=dict(img='data'))
    check = only(check_dataset('k', ds))
    assert (check.status, check.detail) == ('BROKEN', (
        "CustomDataset reads its images from data_prefix['img_path'], but its data_prefix has "
        "only 'img'"))
    assert check.fix[0].endswith('--cfg-options k.data_prefix.img_path=DIR')
    check = only(check_dataset('k', dict(ds, data_prefix={})))  # the same KeyError at build
    assert (check.status, check.detail) == ('BROKEN', (
        "CustomDataset reads its images from data_prefix['img_path'], but its data_prefix is "
        'empty'))
    ann = write_list(tmp_path, [f'{n} 0' for n in names])
    os.makedirs(tmp_path / 'elsewhere')
    ds = dict(ds, ann_file=ann, data_prefix=dict(img='elsewhere', img_path='data'))
    assert only(check_dataset('k', ds)).status == OK


def test_the_classes_of_mmpretrains_old_classes_key_are_fixed_too(tmp_path, images):
    """MMPretrain still takes classes=[...] (its old spelling of metainfo's): the preflight
    read metainfo's only, so a label beyond them, or more class folders than them, passed and
    failed in training (a device assert) or at build (an AssertionError)."""
    root, names = images
    ann = write_list(tmp_path, [f'{names[0]} 0', f'{names[1]} 2'])
    ds = dict(type='CustomDataset', data_root=root, ann_file=ann, classes=['a', 'b'])
    check = only(check_dataset('k', ds, labels=True))
    assert (check.status, check.detail.split(':')[0]) == ('BROKEN', (
        f"{ann} line 2 ('{names[1]} 2') has label 2, but CustomDataset has 2 classes (labels 0 "
        'to 1)'))
    assert only(check_dataset('k', dict(ds, classes=['a', 'b', 'c']), labels=True)).status == OK
    os.makedirs(osp.join(root, 'n02'))
    check = only(check_dataset('k', dict(type='CustomDataset', data_root=root, classes=['a'])))
    assert (check.status, check.detail.split(',')[0]) == (
        'BROKEN', f'{root} has 2 class folders')
