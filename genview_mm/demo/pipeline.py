"""The whole GenView pipeline on a small embedded dataset, stage by stage, with the real tools.

Stages (each one a ``tools/`` command run as a subprocess, exactly as a user would run it):

1. photos: real photos from scikit-image's wheel, written as a two-folder image dataset;
2. models: tiny randomly initialised Stable unCLIP + CLIP (unless real ones are given);
3. ``tools/fit_foreground_pca.py`` for the generator's image encoder and for the scorer's CLIP;
4. ``tools/generate_views.py``: foreground ratio -> noise level -> generated view + manifest;
5. ``tools/dist_train.sh``: GenView MoCo v2 with the quality-driven loss, 2 processes;
6. ``tools/visualize_pairs.py``: pairs with s_f, s_b and w;
7. a summary (printed and written to ``summary.json``).

A stage records the settings it starts with and, once finished, that it is done (its record
under ``stages/``), so an interrupted demo resumes where it stopped: a stage cut short runs again
with the same settings (its tools resume); one started or finished with other settings
(``--num-images``, ``--epochs``, ``--gpus``, the models it uses), or after a stage it uses ran
again, starts over from clean outputs (a new scorer CLIP redoes its PCA and the training, not
the generation).
"""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from genview_mm.structures.manifest import read_manifest
from genview_mm.utils.atomic_write import atomic_write
from genview_mm.utils.dist import free_port
from genview_mm.utils.file_safety import lies_under, writable_problem
from genview_mm.utils.installation import configs_dir, tools_dir

#: the folder holding the package (a checkout's root, or site-packages): on the stages' path
PACKAGE_PARENT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: the file that marks a folder as a demo's own: a rerun writes into it and deletes in it
MARK = '.genview_demo'


def tool(name: str) -> str:
    """``tools/<name>`` of this installation (a checkout's, or the wheel's ``.mim/tools``)."""
    return osp.join(tools_dir(), name)


def demo_config() -> str:
    """The demo's config, beside the tools (``configs/`` or ``.mim/configs``)."""
    return osp.join(configs_dir(), 'demo', 'genview_mocov2_r18_tiny_cpu.py')


def check_out_dir(out_dir: str) -> None:
    """Raise ValueError unless ``out_dir`` is missing, an empty folder or a demo's own (its
    mark, or the ``stages/photos.json`` of a demo from before the mark): a stage overwrites its
    files, and one whose settings changed deletes them. An empty name (an unset variable; it
    would be the working folder) or a folder that cannot be made is refused too."""
    if not out_dir.strip():
        raise ValueError('--out-dir is empty (an unset variable?): name the demo\'s folder')
    if not osp.lexists(out_dir):
        problem = writable_problem(out_dir)
        if problem:
            raise ValueError(f'--out-dir {out_dir}: {problem}: pass a folder it can create')
        return
    if not osp.isdir(out_dir):
        raise ValueError(f'--out-dir {out_dir} is a file: pass a folder (it is created)')
    if os.listdir(out_dir) and not (osp.isfile(osp.join(out_dir, MARK))
                                    or osp.isfile(osp.join(out_dir, 'stages', 'photos.json'))):
        raise ValueError(f'--out-dir {out_dir} holds files that a demo did not write, and the '
                         'demo overwrites and deletes files in its folder: pass a new or empty '
                         'folder')


class Demo:
    """Runs the stages into ``out_dir``.

    Args:
        out_dir (str): where everything goes.
        unclip (str, optional): Stable unCLIP img2img pipeline (folder or hub id); None: tiny.
        scorer_clip (str, optional): CLIP vision encoder of the scorer; None: tiny.
        num_images (int): photos in the dataset. Defaults to 48.
        epochs (int): pretraining epochs. Defaults to 4.
        gpus (int): training processes (CPU processes without CUDA). Defaults to 2.
    """

    def __init__(self, out_dir: str, unclip: Optional[str] = None,
                 scorer_clip: Optional[str] = None, num_images: int = 48, epochs: int = 4,
                 gpus: int = 2) -> None:
        self.out = osp.abspath(out_dir)
        self.unclip, self.scorer_clip = unclip, scorer_clip
        self.num_images, self.epochs, self.gpus = num_images, epochs, gpus
        self.times: Dict[str, float] = self._load_times()
        self.seen: List[str] = []  # the stages met in this run, in order
        self.images = osp.join(self.out, 'data', 'images')
        self.views = osp.join(self.out, 'views')
        self.work = osp.join(self.out, 'train')

    def path(self, *parts: str) -> str:
        return osp.join(self.out, *parts)

    def _load_times(self) -> Dict[str, float]:
        """Stage timings of an earlier run into the same folder (kept for skipped stages)."""
        try:
            with open(osp.join(self.out, 'stage_seconds.json')) as f:
                return {str(k): float(v) for k, v in json.load(f).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def stage(self, name: str, key: str, settings: dict, outputs: List[str], fn, *args,
              after: Optional[Sequence[str]] = None) -> None:
        """Run ``fn(*args)`` unless stage ``key`` finished before with these ``settings`` and
        none of the stages it uses (``after``; None: every earlier one) started after it did
        (a record's ``seq``, the order the stages started in: one that ran in this run, or in a
        demo stopped before the next one's record was written). It resumes (its
        tools pick up what they left) when it was cut short with these settings; otherwise its
        ``outputs`` (in the demo's folder) are deleted first: it started or finished with other
        settings, one of its ``outputs`` is gone, or its inputs were made again."""
        record = self.path('stages', f'{key}.json')
        old = _read_record(record)
        uses = [k for k in (self.seen if after is None else after) if k != key]
        self.seen.append(key)
        gone = [p for p in outputs if not osp.lexists(p)] if old and old['done'] else []
        newer = old is not None and any(
            (_read_record(self.path('stages', f'{k}.json')) or {}).get('seq', 0) > old['seq']
            for k in uses)
        same = old is not None and old['settings'] == settings and not newer and not gone
        print(f'\n===== [genview demo] {name}' +
              (' (done earlier, skipped)' if same and old['done'] else ''), flush=True)
        if same and old['done']:
            return
        if not same:
            if old is not None:
                why = (f'settings changed ({old["settings"]} -> {settings})'
                       if old['settings'] != settings else
                       f'its output {gone[0]} is gone' if gone else 'a stage it uses ran again')
                print(f'===== [genview demo] {why}: starting over')
            for path in (p for p in outputs if lies_under(p, self.out)):
                if osp.isdir(path) and not osp.islink(path):
                    shutil.rmtree(path)
                elif osp.lexists(path):
                    os.remove(path)
        seq = 1 + max((r['seq'] for r in map(_read_record, glob.glob(
            self.path('stages', '*.json'))) if r), default=0)  # after every stage's start
        with atomic_write(record) as f:  # before it runs: cut short, a rerun knows its settings
            json.dump(dict(settings=settings, done=False, seq=seq), f)
        start = time.time()
        fn(*args)
        self.times[name] = round(time.time() - start, 1)
        with atomic_write(self.path('stage_seconds.json')) as f:
            json.dump(self.times, f, indent=2)
        with atomic_write(record) as f:  # last: the stage is done
            json.dump(dict(settings=settings, done=True, seq=seq), f)
        print(f'===== [genview demo] {name}: {self.times[name]} s', flush=True)

    def run_tool(self, cmd: List[str], log_name: str, extra_env: Optional[dict] = None) -> None:
        """Run a stage's ``cmd`` (from the user's folder), its output shown and saved to the log
        ``log_name``. Its shell launchers (tools/_python.sh) get this interpreter as ``PYTHON``,
        so every stage runs under the demo's Python: from a conda env without the repo's .venv,
        ``tools/dist_train.sh`` picked ``python``/``python3`` from the PATH instead."""
        env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT + os.pathsep +
                   os.environ.get('PYTHONPATH', ''),
                   PYTHONUNBUFFERED='1', PYTHON=sys.executable, **(extra_env or {}))
        log_path = self.path('logs', log_name + '.log')
        os.makedirs(osp.dirname(log_path), exist_ok=True)
        print('$ ' + ' '.join(cmd), flush=True)
        with open(log_path, 'w') as log:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            try:
                for line in proc.stdout:
                    log.write(line)
                    print('    ' + line, end='', flush=True)
                proc.wait()
            except BaseException:  # Ctrl-C, or SIGTERM (genview_demo.py exits on it): the
                proc.terminate()   # stage (torchrun and its workers) stops with the demo
                proc.wait()
                raise
            if proc.returncode != 0:
                raise RuntimeError(f'demo stage failed: {" ".join(cmd)} (exit {proc.returncode}); '
                                   f'full log: {log_path}. Fix what it says, then rerun the '
                                   'demo: it resumes.')

    # ---- stages -------------------------------------------------------------------------
    def write_photos(self) -> None:
        from PIL import Image

        from .photos import sample_photos
        for i, img in enumerate(sample_photos(self.num_images, size=96)):
            folder = osp.join(self.images, 'ab'[i % 2])  # two folders, as in a class layout
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(img).save(osp.join(folder, f'img_{i:04d}.jpg'), quality=95)

    def save_model(self, which: str) -> None:
        """The tiny ``'unclip'`` or ``'scorer'`` model, where no real one is given."""
        from .tiny_models import save_tiny_clip_vision, save_tiny_unclip
        if which == 'unclip' and self.unclip is None:
            save_tiny_unclip(self.path('models', 'tiny_unclip'))
        if which == 'scorer' and self.scorer_clip is None:
            save_tiny_clip_vision(self.path('models', 'tiny_clip'))

    def fit_pca(self, encoder: str, subfolder: Optional[str], out: str) -> None:
        cmd = [sys.executable, tool('fit_foreground_pca.py'), self.images, '--out', out,
               '--encoder', encoder, '--num-images', str(self.num_images)]
        if subfolder:
            cmd += ['--subfolder', subfolder]
        self.run_tool(cmd, osp.splitext(osp.basename(out))[0])

    def generate(self, unclip: str) -> None:
        self.run_tool([sys.executable, tool('generate_views.py'), self.images, '--pca',
                       self.path('pca', 'generator.pth'), '--out-dir', self.views, '--pretrained',
                       unclip, '--output-size', '96', '--batch-size', '8'], 'generate_views')

    def write_config(self, scorer_clip: str) -> str:
        from mmengine.config import Config
        cfg = Config.fromfile(demo_config())
        cfg.merge_from_dict({
            'train_dataloader.dataset.data_root': self.images,
            'genview.manifest': osp.join(self.views, 'manifest.jsonl'),
            'model.scorer.encoder': scorer_clip,
            'model.scorer.pca_path': self.path('pca', 'scorer.pth'),
            'train_cfg.max_epochs': self.epochs,
            'param_scheduler.0.T_max': self.epochs, 'param_scheduler.0.end': self.epochs,
        }, allow_list_keys=True)
        path = self.path('genview_demo_config.py')
        cfg.dump(path)
        return path

    def train(self, config: str) -> None:
        self.run_tool(['bash', tool('dist_train.sh'), config, str(self.gpus), '--work-dir',
                       self.work, '--resume'], 'train',
                      {'PORT': os.environ.get('PORT') or str(free_port())})  # not 29500: two
        # demos at once, or a demo beside another dist_train.sh job, failed with EADDRINUSE

    def visualize(self, config: str) -> None:
        self.run_tool([sys.executable, tool('visualize_pairs.py'), '--config', config,
                       '--checkpoint', osp.join(self.work, f'epoch_{self.epochs}.pth'), '--num',
                       '8', '--out', self.path('pairs.png')], 'visualize_pairs')

    def run(self) -> dict:
        check_out_dir(self.out)
        os.makedirs(self.out, exist_ok=True)
        open(self.path(MARK), 'a').close()
        unclip = self.unclip or self.path('models', 'tiny_unclip')
        scorer_clip = self.scorer_clip or self.path('models', 'tiny_clip')
        data = dict(images=self.num_images)
        # each stage redone only when what it uses changed: a new scorer CLIP, not the views
        gen, scorer = dict(data, unclip=unclip), dict(data, scorer_clip=scorer_clip)
        self.stage('1/7 photos (scikit-image)', 'photos', data, [self.images],
                   self.write_photos)
        self.stage('2/7 generator model', 'model_unclip', dict(unclip=unclip),
                   [unclip] if self.unclip is None else [], self.save_model, 'unclip', after=())
        self.stage('2/7 scorer model', 'model_scorer', dict(scorer_clip=scorer_clip),
                   [scorer_clip] if self.scorer_clip is None else [], self.save_model, 'scorer',
                   after=())
        gen_pca, scorer_pca = self.path('pca', 'generator.pth'), self.path('pca', 'scorer.pth')
        self.stage('3/7 foreground PCA of the generator encoder', 'pca_generator', gen,
                   [gen_pca], self.fit_pca, unclip, 'image_encoder', gen_pca,
                   after=('photos', 'model_unclip'))
        self.stage('3/7 foreground PCA of the scorer encoder', 'pca_scorer', scorer,
                   [scorer_pca], self.fit_pca, scorer_clip, None, scorer_pca,
                   after=('photos', 'model_scorer'))
        manifest = osp.join(self.views, 'manifest.jsonl')
        self.stage('4/7 adaptive view generation', 'views', gen,
                   [self.views, manifest, osp.join(self.views, 'images')], self.generate,
                   unclip, after=('photos', 'model_unclip', 'pca_generator'))
        config = self.write_config(scorer_clip)
        trained = dict(data, unclip=unclip, scorer_clip=scorer_clip, epochs=self.epochs,
                       gpus=self.gpus)
        self.stage(f'5/7 GenView MoCo v2 pretraining ({self.gpus} processes)', 'train', trained,
                   [self.work, osp.join(self.work, f'epoch_{self.epochs}.pth')], self.train,
                   config)
        self.stage('6/7 pairs and weights picture', 'pairs', trained, [self.path('pairs.png')],
                   self.visualize, config)
        summary = self.summary(unclip, scorer_clip, manifest)
        print('\n===== [genview demo] 7/7 summary\n' + json.dumps(summary, indent=2))
        with atomic_write(self.path('summary.json')) as f:
            json.dump(summary, f, indent=2)
        return summary

    def summary(self, unclip: str, scorer_clip: str, manifest: str) -> dict:
        rows = read_manifest(manifest, status=None)
        ok = [r for r in rows if r['status'] == 'ok']
        sims = [r['clip_sim'] for r in ok if r['clip_sim'] is not None]
        levels, counts = np.unique([r['noise_level'] for r in ok], return_counts=True)
        by_iter = {}  # a resumed run logs again the iterations its checkpoint came before
        for p in sorted(glob.glob(osp.join(self.work, '*', 'vis_data', 'scalars.json'))):
            with open(p) as f:  # runs in time order (timestamped folders): the last one wins
                by_iter.update((row.get('iter', row.get('step')), row)
                               for row in map(json.loads, f) if 'loss' in row)
        logs = [by_iter[k] for k in sorted(by_iter)]
        tiny = 'tiny, randomly initialised (outputs are noise; pass --unclip/--scorer-clip ' \
               'for real weights)'
        return dict(
            models=dict(unclip=unclip if self.unclip else f'{unclip} [{tiny}]',
                        scorer_clip=scorer_clip if self.scorer_clip else f'{scorer_clip} [{tiny}]'),
            images=self.num_images, generated_ok=len(ok), generation_failed=len(rows) - len(ok),
            noise_levels={int(k): int(v) for k, v in zip(levels, counts)},
            mean_fg_ratio=round(float(np.mean([r['fg_ratio'] for r in ok])), 3),
            mean_clip_sim=round(float(np.mean(sims)), 3) if sims else None,  # known ones
            iterations=len(logs),
            loss_first=logs[0]['loss'] if logs else None,
            loss_last=logs[-1]['loss'] if logs else None,
            weight_std_mean=round(float(np.mean([r['genview_w_std'] for r in logs])), 4)
            if logs else None,
            checkpoint=osp.join(self.work, f'epoch_{self.epochs}.pth'),
            pairs_picture=self.path('pairs.png'), manifest=manifest,
            stage_seconds=self.times)


def _read_record(path: str) -> Optional[dict]:
    """A stage record: ``{'settings': ..., 'done': bool, 'seq': int}`` (``seq``: the order in
    which the stages started; 0 in a demo's from before it); a demo's from before the start
    records held the settings alone, written when the stage was done; None if there is none,
    or it does not parse."""
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    if set(record) in ({'settings', 'done'}, {'settings', 'done', 'seq'}):
        seq = record.get('seq', 0)
        return dict(record, seq=seq if isinstance(seq, int) else 0)
    return dict(settings=record, done=True, seq=0)
