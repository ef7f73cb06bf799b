"""Look-up from a dataset sample's image path to its generated views in a manifest."""
from array import array
from collections import Counter
from typing import Dict, Iterable, List, Optional, Set, Tuple

import numpy as np

from ..structures.manifest import RowMatcher, output_resolver, outside_views_folder, read_rows

# (absolute path of the generated image, noise level or UNKNOWN_LEVEL) per variation
Views = List[Tuple[str, int]]
UNKNOWN_LEVEL = -1  # imported views (tools/import_views.py) may come without their noise level


class ManifestIndex:
    """Index of a generation manifest by source image.

    A sample's ``img_path`` is matched to rows by the manifest's one rule
    (:class:`genview_mm.structures.manifest.RowMatcher`: absolute ``source``, then the key under
    ``source_root`` if set, else the longest trailing part of the path that is a ``key``). The
    manifest is read through ``mmengine.fileio`` (``backend_args`` as in ``LoadImageFromFile``),
    one row at a time (no list of 1.28M row dicts: 2.5 GB of RSS per training process for
    ImageNet).
    A row without a noise level (views imported without the official level lists) gets
    ``UNKNOWN_LEVEL`` (-1). A key whose rows (failed and filtered ones included) come from
    several sources (the manifests of two datasets with the same layout, concatenated) is
    ``mixed``: a sample whose path is one of those sources gets that source's views only (none
    if its rows failed; else each image would draw the other's), one that is none of them all
    of them (:meth:`ambiguous` says which); the manifest is then read a second time for those
    keys.

    Args:
        manifest (str): manifest file, or the generation output folder holding ``manifest.jsonl``.
        source_root (str, optional): the folder the generation tool's keys are relative to.
            Defaults to None (suffix matching).
        min_clip_sim (float, optional): drop generated views whose CLIP similarity to their
            source is below this. Defaults to None (keep all).
        backend_args (dict, optional): ``mmengine.fileio`` backend of the manifest.
            Defaults to None (local files).
    """

    def __init__(self, manifest: str, source_root: Optional[str] = None,
                 min_clip_sim: Optional[float] = None,
                 backend_args: Optional[dict] = None) -> None:
        self.manifest, self.min_clip_sim = manifest, min_clip_sim
        self.matcher = RowMatcher(source_root)
        #: the keys of rows filtered by ``min_clip_sim`` (to say why an image has no view)
        self.filtered = RowMatcher(source_root)
        self.by_key: Dict[str, Views] = {}
        #: keys with rows of several sources, and the views of each of their sources
        self.mixed: Set[str] = set()
        self.by_exact_source: Dict[str, Views] = {}
        self._mixed_sources: Optional[Dict[str, List[str]]] = None  # key -> its sources
        self.num_rows = self.num_filtered = 0
        resolve = output_resolver(manifest, backend_args)
        #: rows 'failed' (of them 'undecodable') and 'ok' (of them 'no_clip_sim': no similarity
        #: recorded, so ``min_clip_sim`` keeps them); outputs 'inside', 'absolute', 'climbs';
        #: 'duplicates': ok rows of a view already listed (each view is drawn with one chance);
        #: 'conflicts': ok rows of another view of a (key, variation) already listed (rows of
        #: one source: a mixed key's other sources have their own views); 'shared_views': ok
        #: rows whose view another image lists too (both images paired with one picture)
        self.stats: Counter = Counter()
        listed: Set[tuple] = set()  # (key, variation) of the views of each key's first source
        outputs = array('q')  # a hash of each listed view (8 bytes a view), for shared views
        for row in read_rows(manifest, backend_args):
            # every row's source is matched, so a source whose rows failed is still itself
            source = self.matcher.source_id(row.source)
            key = self.matcher.add(row, source)
            if self.matcher.keys[key] != source:  # the key's first row had another source
                self.mixed.add(key)
            if not row.ok:
                self.stats['failed'] += 1
                self.stats['undecodable'] += str(row.reason or '').startswith('undecodable')
                continue
            self.stats['ok'] += 1
            self.stats['no_clip_sim'] += row.clip_sim is None or row.clip_sim != row.clip_sim  # NaN
            if row.output:
                self.stats[outside_views_folder(row.output) or 'inside'] += 1
            if row.below(min_clip_sim):
                self.num_filtered += 1
                self.filtered.add(row)
                continue
            views = self.by_key.setdefault(key, [])
            if self._add_view(views, row, resolve):
                self.num_rows += 1
                outputs.append(hash(views[-1][0]))
                if self.matcher.keys[key] == source:  # another dataset's rows are no conflict
                    self.stats['conflicts'] += (key, row.variation) in listed
                    listed.add((key, row.variation))
            else:  # listed again (concatenated manifests)
                self.stats['duplicates'] += 1
        del listed
        hashes = np.sort(np.frombuffer(outputs, np.int64))
        self.stats['shared_views'] = int(np.count_nonzero(hashes[1:] == hashes[:-1]))
        del outputs, hashes
        for row in read_rows(manifest, backend_args) if self.mixed else ():
            key = self.matcher.key_id(row.key)
            if row.ok and not row.below(min_clip_sim) and key in self.mixed:
                self._add_view(self.by_exact_source.setdefault(
                    self.matcher.source_id(row.source), []), row, resolve)
        if not self.by_key and self.num_filtered:
            raise ValueError(f'The manifest {manifest!r} lists no usable generated image: '
                             f'{self.filtered_note()}: lower it (genview.min_clip_sim), or set '
                             'it to None to keep every view.')
        if not self.by_key:
            raise ValueError(f'The manifest {manifest!r} lists no usable generated image. Check '
                             'that tools/generate_views.py finished and tools/merge_manifests.py '
                             'ran.')

    @staticmethod
    def _add_view(views: Views, row, resolve) -> bool:
        """Append ``row``'s view to ``views`` unless it is there; whether it was added."""
        out = resolve(row.output) if row.output else row.output
        if any(known == out for known, _ in views):
            return False
        views.append((out, UNKNOWN_LEVEL if row.noise_level is None else int(row.noise_level)))
        return True

    def _views(self, key: Optional[str], img_path: str) -> Views:
        if key in self.mixed:
            source = self.matcher.source_id(img_path)
            if source in self.matcher.by_source:  # one of the key's sources: its own views
                return self.by_exact_source.get(source, [])
        return self.by_key.get(key, []) if key is not None else []

    def ambiguous(self, img_path: str) -> bool:
        """Whether ``img_path`` matches a mixed key by that key alone (none of its sources is
        this path): it draws from the views of every source."""
        return (self.matcher.match(img_path) in self.mixed and
                self.matcher.source_id(img_path) not in self.matcher.by_source)

    def identity(self, img_path: str) -> Optional[tuple]:
        """What ``img_path`` draws its views from, None without views: its key, and for a
        mixed key the source it is (two paths of one identity share their views)."""
        key = self.matcher.match(img_path)
        if not self._views(key, img_path):
            return None
        source = self.matcher.source_id(img_path)
        return key, source if key in self.mixed and source in self.matcher.by_source else None

    def drawn_sources(self, img_path: str) -> Optional[List[str]]:
        """The sources whose views ``img_path`` draws when it matches a mixed key by key
        alone (each of them); None for another key (its rows' one source)."""
        key = self.matcher.match(img_path)
        if key not in self.mixed:
            return None
        if self._mixed_sources is None:
            self._mixed_sources = {}
            for source in self.by_exact_source:
                self._mixed_sources.setdefault(self.matcher.by_source[source], []).append(source)
        return self._mixed_sources.get(key, [])

    def filtered_note(self) -> str:
        """'N views filtered by min_clip_sim=X' ('' when none was)."""
        if not self.num_filtered:
            return ''
        return f'{self.num_filtered} views filtered by min_clip_sim={self.min_clip_sim}'

    def num_filtered_only(self, img_paths: Iterable[str]) -> int:
        """How many of ``img_paths`` have no view only because ``min_clip_sim`` filtered
        theirs out."""
        return sum(not self.lookup(p) and self.filtered.match(p) is not None for p in img_paths)

    def lookup(self, img_path: str) -> Views:
        """Generated views of one source image (empty list if it has none)."""
        return self._views(self.matcher.match(img_path), img_path)

    def matches(self, img_paths: Iterable[str]) -> List[Tuple[Optional[str], Views]]:
        """The key (None: no row) and the generated views of each of ``img_paths``, matched
        once each (the start-of-training checks read coverage, shared rows and missing files
        from this)."""
        return [(key, self._views(key, p)) for p in img_paths
                for key in [self.matcher.match(p)]]
