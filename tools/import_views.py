"""Use pre-generated views (the released GenView variations) for training: write a manifest.

    # the released views, unpacked next to ImageNet's train/ folder
    python tools/import_views.py data/imagenet/train_variations \\
        --source-root data/imagenet/train --out data/genview/views_released/manifest.jsonl \\
        [--fg-ratios fg_ratios_0.txt fg_ratios_100.txt ...]

VIEWS_ROOT mirrors --source-root: VIEWS_ROOT/n01440764/x.JPEG is the view of
SOURCE_ROOT/n01440764/x.JPEG (any image extension, compared case-insensitively; folder and
file names exactly; hidden names such as ._x.JPEG skipped). One row per source image with a
usable view (not empty, not a link to nothing or to the source itself; with --verify, one that
decodes); noise levels come from the official fg_ratios_<level>.txt lists if
given (else null). Prints what did not match; exits with status 1 if nothing matched, 2 on bad
input. Rerunning rewrites the same manifest byte for byte; an existing --out that this tool did
not write (an image list, a manifest of generated views) is left alone unless --overwrite.
"""
import argparse
import importlib
import importlib.util
import json
import os.path as osp
import sys
import types

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('views_root', help='folder of the pre-generated views (train_variations/)')
    p.add_argument('--source-root', default='data/imagenet/train',
                   help='folder of the source images (default: %(default)s)')
    p.add_argument('--out', default='data/genview/views_released/manifest.jsonl',
                   help='manifest to write; a folder (or a name ending in /) gets '
                   'manifest.jsonl inside (default: %(default)s)')
    p.add_argument('--fg-ratios', nargs='+', default=[], metavar='LIST',
                   help='official noise-level lists fg_ratios_<level>.txt ("<image path> '
                   '<value>" lines; the level is taken from the file name)')
    p.add_argument('--ext', default='any', help="extension of the view files, e.g. '.JPEG' "
                   "(case-insensitive), or 'any' image extension (default: %(default)s)")
    p.add_argument('--verify', action='store_true', help='decode every matched view and '
                   'import only those that decode: finds views cut short by an unpack that was '
                   'stopped (reads every file; without it only empty files are found)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.add_argument('--overwrite', action='store_true', help='replace an existing --out that '
                   'this tool did not write (without it the tool stops and leaves it alone)')
    args = p.parse_args(argv)
    if not args.out.strip():  # '' is read as the working folder: its manifest.jsonl replaced
        p.error('--out is empty (an unset variable?): name the manifest to write')
    return args


def load_package() -> types.ModuleType:
    """``genview_mm.apis.import_views``, without running the ``__init__.py`` of the packages
    above it if genview_mm is not imported yet: that imports torch, mmcv and mmpretrain (1.2 GB
    of RSS and 7 s measured) for a tool that needs only NumPy and the standard library."""
    if 'genview_mm' not in sys.modules:
        spec = importlib.util.find_spec('genview_mm')
        root = list(spec.submodule_search_locations)[0]
        for sub in ('', 'apis', 'generation', 'utils'):
            package = types.ModuleType('.'.join(filter(None, ('genview_mm', sub))))
            package.__path__ = [osp.join(root, sub) if sub else root]
            sys.modules[package.__name__] = package
        importlib.import_module('genview_mm.utils.interrupt').install()
    return importlib.import_module('genview_mm.apis.import_views')


# what tools/generate_views.py leaves in its --out-dir (apis/generation: settings, shards)
GENERATION_RUN = ('generation_settings.json', 'shards')


#: how every row this tool writes spells its generator (``ManifestRow.to_line``)
IMPORT_GENERATOR = '"generator": "import:'


def is_manifest(path: str) -> bool:
    """Whether every row of ``path`` is one this tool writes (a GenView manifest row whose
    ``generator`` is ``import:<views root>``): a manifest of generated views (its seeds, noise
    levels and CLIP similarities) is the user's work, replaced only with ``--overwrite``, also
    when it follows imported rows (manifests concatenated); a line after the first is read
    without decoding it (1.28M rows in a second)."""
    with open(path, encoding='utf-8') as f:
        first = True
        for line in f:
            if not line.strip():
                continue
            if first:
                row = json.loads(line)
                if not (isinstance(row, dict) and {'source', 'key', 'output'} <= set(row) and
                        str(row.get('generator') or '').startswith('import:')):
                    return False
                first = False
            elif IMPORT_GENERATOR not in line:
                return False
    return True  # only imported rows, or only blank lines: nothing to lose


def main(argv=None) -> int:
    args = parse_args(argv)
    package = load_package()
    format_report, import_views = package.format_report, package.import_views
    from genview_mm.utils.file_safety import ReplaceRefused, check_replace
    if osp.isdir(args.out) or args.out.endswith(('/', osp.sep)):  # a folder, maybe still to make
        args.out = osp.join(args.out, 'manifest.jsonl')
    run = [osp.join(osp.dirname(args.out) or '.', name) for name in GENERATION_RUN]
    if any(osp.exists(path) for path in run):  # its manifest is a generation's, not an import's
        print(f'import_views.py: error: {osp.dirname(args.out) or "."} holds a run of '
              f'tools/generate_views.py ({" or ".join(map(osp.basename, run))}): importing '
              'there would replace its merged manifest and train on the released views '
              'instead. Pass another --out (e.g. data/genview/views_released/manifest.jsonl) '
              'and point genview.manifest at it.', file=sys.stderr)
        return 2
    try:
        check_replace(args.out, is_manifest, 'a manifest of imported views', '--overwrite',
                      args.overwrite)
    except ReplaceRefused as exc:
        print(f'import_views.py: error: {exc}', file=sys.stderr)
        return 2
    try:
        report = import_views(args.views_root, args.source_root, args.out, args.fg_ratios,
                              args.ext, progress=not args.no_progress, verify=args.verify)
    except (OSError, ValueError) as exc:  # a full disk (DiskFull): 1, as everywhere
        print(f'import_views.py: error: {exc}', file=sys.stderr)
        return getattr(exc, 'exit_code', 2)
    if getattr(sys.stdout, 'errors', None) == 'strict' and hasattr(sys.stdout, 'reconfigure'):
        # file names that are not UTF-8 (surrogate escapes) print as \udcXX, not a traceback
        sys.stdout.reconfigure(errors='backslashreplace')
    print(format_report(report))
    return 0 if report['manifest'] else 1


if __name__ == '__main__':
    load_package()
    from genview_mm.utils.interrupt import exit_on_sigterm
    exit_on_sigterm()  # a job's time limit or kill: the manifest's temporary file is removed
    sys.exit(main())
