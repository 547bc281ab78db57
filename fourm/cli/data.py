"""`fourm data scenes|pack|preview`: make, pack and look at raw datasets (webdataset shards).
Each action is a thin shell over a library function in fourm.datasets."""
from __future__ import annotations


def register(subparsers) -> None:
    data = subparsers.add_parser("data", help="make, pack and preview raw datasets (webdataset shards)",
                                 description="Make, pack and preview raw datasets stored as webdataset shards.")
    actions = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    _add_scenes(actions)
    _add_pack(actions)
    _add_preview(actions)


def _add_scenes(actions) -> None:
    p = actions.add_parser("scenes", help="render the procedural 3D scenes dataset",
                           description="Render CLEVR-like scenes (RGB, depth, semseg, normals, caption, scene graph) "
                                       "into DIR/train and DIR/val shards. Rerunning resumes an interrupted run.")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, default=1000, help="training samples (default: %(default)s)")
    p.add_argument("--n-val", type=int, default=None, help="validation samples (default: max(n // 10, 1))")
    p.add_argument("--res", type=int, default=64, help="image height and width in pixels (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed; sample i uses (seed, split, i) (default: %(default)s)")
    p.add_argument("--shard-size", type=int, default=256, help="samples per shard (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="processes rendering shards in parallel (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_scenes)


def _add_pack(actions) -> None:
    p = actions.add_parser("pack", help="pack a folder of aligned files into shards",
                           description="Pack SRC/{rgb,depth,semseg,normals,caption}/<name>.<ext> (any subset) "
                                       "into DIR/<split>/shard-*.tar.")
    p.add_argument("--src", required=True, help="folder with modality subfolders")
    p.add_argument("--out", required=True, help="output dataset folder")
    p.add_argument("--split", default="train", help="split name (subfolder of --out) (default: %(default)s)")
    p.add_argument("--shard-size", type=int, default=256, help="samples per shard (default: %(default)s)")
    p.add_argument("--skip-bad", action="store_true", help="skip and count bad samples instead of stopping")
    p.add_argument("--overwrite", action="store_true", help="replace shards already in the split folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_pack)


def _add_preview(actions) -> None:
    p = actions.add_parser("preview", help="draw a contact sheet of samples")
    p.add_argument("dir", help="dataset folder (with split subfolders) or a folder of shards")
    p.add_argument("--out", default="preview.png", help="output PNG (default: %(default)s)")
    p.add_argument("--n", type=int, default=6, help="samples (rows) (default: %(default)s)")
    p.add_argument("--split", default="val", help="split to show (default: %(default)s)")
    p.set_defaults(func=run_preview)


def run_scenes(args) -> int:
    from fourm.datasets.scenes.generate import generate_scenes

    generate_scenes(args.out, n=args.n, resolution=args.res, seed=args.seed, n_val=args.n_val,
                    shard_size=args.shard_size, workers=args.workers, progress=not args.no_progress)
    return 0


def run_pack(args) -> int:
    from fourm.datasets.pack import pack_folder

    report = pack_folder(args.src, args.out, split=args.split, shard_size=args.shard_size, skip_bad=args.skip_bad,
                         overwrite=args.overwrite, progress=not args.no_progress)
    print(f"packed {report.written} samples into {len(report.shards)} shards; skipped {len(report.skipped)}")
    return 0


def run_preview(args) -> int:
    from fourm.datasets.preview import make_preview

    print(make_preview(args.dir, args.out, n=args.n, split=args.split))
    return 0
