"""The whole GenView pipeline on an embedded default (photos from scikit-image, tiny models).

    python tools/genview_demo.py [--out-dir work_dirs/genview_demo] [--unclip ID_OR_DIR]
                                 [--scorer-clip ID_OR_DIR]

Real weights: --unclip stabilityai/stable-diffusion-2-1-unclip --scorer-clip
openai/clip-vit-base-patch32 (or local folders; also GENVIEW_UNCLIP / GENVIEW_SCORER_CLIP).
Rerun the same command to resume an interrupted demo.
"""
import argparse
import os


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out-dir', default='work_dirs/genview_demo')
    parser.add_argument('--unclip', default=os.environ.get('GENVIEW_UNCLIP'),
                        help='Stable unCLIP img2img pipeline (default: a tiny random one)')
    parser.add_argument('--scorer-clip', default=os.environ.get('GENVIEW_SCORER_CLIP'),
                        help='CLIP vision encoder of the pair scorer (default: a tiny random one)')
    parser.add_argument('--num-images', type=int, default=48)
    parser.add_argument('--epochs', type=int, default=4)
    parser.add_argument('--gpus', type=int, default=2, help='training processes')
    args = parser.parse_args()
    import genview_mm  # noqa: F401  (after parsing: --help answers without torch)
    from genview_mm.utils.interrupt import exit_on_sigterm
    exit_on_sigterm()  # `kill`/`timeout` of the demo stops the stage it runs (see Demo.run_tool)
    from genview_mm.demo.pipeline import Demo
    Demo(args.out_dir, args.unclip, args.scorer_clip, args.num_images, args.epochs,
         args.gpus).run()


if __name__ == '__main__':
    main()
