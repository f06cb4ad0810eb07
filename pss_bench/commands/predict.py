"""``pss-bench predict CONFIG CHECKPOINT --out PRED_DIR``: predictions in the submission layout from
an existing checkpoint, without training (and colour overlays with ``--show-dir``).

The model is the config's; the weights come from a harness Runner checkpoint (``WORK/id<k>/iter_N.pth``
with the ``config.py`` beside it) or a plain MMSegmentation checkpoint of the segmentor. Prediction
is :mod:`pss_bench.inference.predict`, called exactly as ``pss-bench run`` calls it (group-batched for
group methods, with the config's test short side), so the files equal the run's byte for byte.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pss_bench.commands.common import add_parser, add_users_option, error, merge_users
from pss_bench.io import input_clashes, output_session


def register(subparsers) -> None:
    p = add_parser(
        subparsers, "predict", help="predict with an existing checkpoint (no training); colour overlays",
        description="Predict every annotated photo of each user into PRED_DIR/id<k>/<stem>.png (the "
                    "submission layout, full resolution) with CONFIG's model and CHECKPOINT's weights, "
                    "as `pss-bench run` does after training. Bad input: one numbered list, exit 2.",
        examples=["pss-bench predict work_dirs/advent_resnet50_demo/id1/config.py "
                  "work_dirs/advent_resnet50_demo/id1/iter_40.pth --out preds --users 1 --show-dir show",
                  "pss-bench predict configs/advent/advent_vgg16.py segmentor.pth --out preds "
                  "--data-root /data/pss"])
    p.add_argument("config", metavar="CONFIG", help="MMEngine config (a run's WORK/id<k>/config.py, or configs/...)")
    p.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="a pss-bench Runner checkpoint or a plain MMSegmentation segmentor checkpoint")
    p.add_argument("--out", required=True, metavar="PRED_DIR", help="prediction folder (id<k>/<stem>.png)")
    add_users_option(p, "users to predict (default: the config's test users, else every user folder)",
                     allow_all=True)
    p.add_argument("--data-root", metavar="ROOT", help="dataset root (default: the config's test data root)")
    p.add_argument("--show-dir", metavar="DIR",
                   help="also write colour overlays (photo | prediction | ground truth) to DIR/id<k>/")
    p.add_argument("--show", type=int, metavar="N", help="overlays per user (default: all predicted photos)")
    p.add_argument("--force", action="store_true", help="overwrite predictions already in PRED_DIR/id<k>/")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the model runs")
    p.add_argument("--unsafe-load", action="store_true",
                   help="load a checkpoint outside a pss-bench work dir with weights_only=False "
                        "(only for files you trust)")
    p.add_argument("--quiet", "-q", action="store_true", help="one summary line instead of a line per user")
    p.set_defaults(func=run)


def _harness_owned(checkpoint: Path) -> bool:
    """A checkpoint inside a pss-bench work dir (``run.json`` in a folder above it)."""
    return any((parent / "run.json").is_file() for parent in list(checkpoint.resolve().parents)[:3])


def damaged_reason(checkpoint: Path) -> str | None:
    """Why ``checkpoint`` is damaged, or None. A PyTorch checkpoint is a zip archive whose directory
    is written last: a file cut short (a kill while saving, a partial copy) starts like one but has
    no directory. Files in the legacy (non-zip) format are left to ``torch.load``."""
    import zipfile

    try:
        with open(checkpoint, "rb") as f:
            head = f.read(4)
    except OSError as err:
        return f"cannot be read: {err.strerror or err}"
    if not head:
        return "the file is empty"
    if head == b"PK\x03\x04" and not zipfile.is_zipfile(checkpoint):
        return "truncated: the zip archive has no central directory"
    return None


def _state_dict(checkpoint: Path, unsafe: bool) -> dict:
    import pickle

    import torch

    damaged = damaged_reason(checkpoint)
    if damaged:
        raise ValueError(f"CHECKPOINT {checkpoint}: damaged file ({damaged}); use an intact copy, e.g. "
                         "an earlier iter_*.pth of the same work dir") from None
    try:
        obj = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as err:  # Runner checkpoints pickle message-hub objects
        refused = isinstance(err, pickle.UnpicklingError) and "weights only" in str(err).lower()
        if not refused:  # not the weights_only refusal: the file itself is bad
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise ValueError(f"CHECKPOINT {checkpoint}: damaged or not a PyTorch checkpoint "
                             f"({type(err).__name__}{': ' + first if first else ''})") from None
        if not (unsafe or _harness_owned(checkpoint)):
            raise ValueError(f"CHECKPOINT {checkpoint}: cannot be read with weights_only=True "
                             f"({type(err).__name__}); if it is a file you trust, pass --unsafe-load") from None
        try:  # the loader of pss_bench.harness.checkpoint (harness files), without MMEngine's log line
            obj = torch.load(checkpoint, map_location="cpu", weights_only=False)
        except Exception as err2:
            raise ValueError(f"CHECKPOINT {checkpoint}: not a readable checkpoint "
                             f"({type(err2).__name__}: {str(err2).splitlines()[0] if str(err2) else ''})") from None
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state:
        raise ValueError(f"CHECKPOINT {checkpoint}: holds no state_dict")
    if all(str(k).startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_model(cfg, checkpoint: Path, unsafe: bool = False):
    """The model of ``cfg`` with the weights of ``checkpoint``: a whole-model checkpoint (the
    harness's; strict) or, for a UDA wrapper config, a plain segmentor checkpoint (into its
    segmentor; strict)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    state = _state_dict(checkpoint, unsafe)
    init_default_scope("mmseg")
    model = MODELS.build(cfg.model)
    target, name = model, "the model"
    if hasattr(model, "segmentor") and not any(k.startswith("segmentor.") for k in state):
        target, name = model.segmentor, "the segmentor"  # an exported / plain MMSegmentation file
    result = target.load_state_dict(state, strict=False)
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if missing or unexpected:
        def some(keys):
            return ", ".join(keys[:3]) + (f" (+{len(keys) - 3})" if len(keys) > 3 else "")
        raise ValueError(f"CHECKPOINT {checkpoint} does not fit {name} of CONFIG"
                         + (f"; missing: {some(missing)}" if missing else "")
                         + (f"; unexpected: {some(unexpected)}" if unexpected else ""))
    return model


def run(args: argparse.Namespace) -> int:
    fail = lambda message: error("predict", message)  # noqa: E731
    try:
        users = merge_users(args.users)
    except ValueError as err:
        return fail(str(err))
    if args.show is not None and args.show < 0:
        return fail(f"--show must be >= 0, got {args.show}")
    config, checkpoint, out = Path(args.config), Path(args.checkpoint), Path(args.out)
    problems = []
    if not config.is_file():
        problems.append(f"CONFIG {config}: no such file")
    if not checkpoint.is_file():
        problems.append(f"CHECKPOINT {checkpoint}: no such file")
    if out.exists() and not out.is_dir():
        problems.append(f"--out {out}: is a file, expected a folder")
    if args.show_dir and Path(args.show_dir).exists() and not Path(args.show_dir).is_dir():
        problems.append(f"--show-dir {args.show_dir}: is a file, expected a folder")
    if problems:
        return _report(problems)

    from mmengine.config import Config

    from pss_bench.data.check import check_dataset
    from pss_bench.data.users import resolve_users
    from pss_bench.inference.predict import test_short_side

    try:
        cfg = Config.fromfile(str(config))
        test_ds = cfg.test_dataloader.dataset
        test_short_side(cfg)  # a config whose test pipeline has no Resize is refused here
    except Exception as err:
        return _report([f"CONFIG {config}: not a usable config ({type(err).__name__}: {err})"])
    data_root = args.data_root or test_ds.get("data_root")
    if not args.data_root and not (data_root and Path(data_root).is_dir()):
        return _report([f"CONFIG {config}: its test data root {data_root} does not exist here; pass "
                        "--data-root ROOT" if data_root else f"CONFIG {config} has no test data root; "
                        "pass --data-root ROOT"])
    if not Path(data_root).is_dir():
        return _report([f"--data-root {data_root}: "
                        + ("not a folder" if Path(data_root).exists() else "no such folder")])
    clashes = input_clashes({"--out": out, "--show-dir": args.show_dir},
                            {"the data root": data_root, "CHECKPOINT": checkpoint, "CONFIG": config})
    if clashes:
        return _report(clashes)
    chosen = resolve_users(data_root, users, sorted(test_ds.get("users") or ()))
    users, absent = chosen.users, chosen.absent
    if absent or not users:
        return _report([f"--users: {', '.join(map(str, absent)) or '(none)'}: no folder under "
                        f"{Path(data_root) / 'personal'}"])
    group = cfg.get("group_inference")
    report = check_dataset(data_root, k=test_ds.get("cluster_k", 80) or 80, users=users, source=False)
    problems = [f"--data-root: {Path(data_root) / p.path}: {p.message}" for p in report.problems
                if group or "train_cluster" not in p.path]  # grouping lists matter for group methods only
    for user in users:
        folder = out / f"id{user}"
        if not args.force and folder.is_dir() and any(folder.iterdir()):
            problems.append(f"--out {out}: id{user}/ already holds predictions; pass --force to overwrite "
                            "them or choose another --out")
    try:
        model = load_model(cfg, checkpoint, args.unsafe_load)
    except ValueError as err:
        problems.append(str(err))
    except Exception as err:
        problems.append(f"CONFIG {config}: the model cannot be built ({type(err).__name__}: {err})")
    if problems:
        return _report(problems)

    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return fail("--device cuda: no CUDA device is available")
        model = model.cuda()
    with output_session() as session:
        try:
            return _predict_all(args, model, cfg, users, data_root, out, report)
        except OSError as err:  # a full disk, a read-only folder: no half of the predictions stays
            if err.filename is None:
                raise
            removed = session.remove_written()
            return fail(f"cannot write {err.filename}: {err.strerror or err}; removed the {len(removed)} "
                        "file(s) this command wrote")


def _predict_all(args, model, cfg, users, data_root, out: Path, report) -> int:
    from pss_bench.inference.overlay import write_overlays
    from pss_bench.inference.predict import predict_user_as_configured

    start, total, shown = time.time(), 0, 0
    for user in users:
        t0 = time.time()
        if not args.quiet:
            print(f"id{user}: predicting {report.users[users.index(user)].annotated} annotated photos ...",
                  flush=True)
        n = predict_user_as_configured(model, cfg, data_root, user, out)
        s = write_overlays(data_root, user, out, args.show_dir, limit=args.show) if args.show_dir else 0
        total, shown = total + n, shown + s
        if not args.quiet:
            print(f"id{user}: {n} predictions -> {out / f'id{user}'} ({time.time() - t0:.1f} s)"
                  + (f", {s} overlays -> {Path(args.show_dir) / f'id{user}'}" if s else ""), flush=True)
    print(f"predicted {total} photos of {len(users)} user{'s' if len(users) != 1 else ''} into {out} in "
          f"{time.time() - start:.1f} s" + (f"; {shown} overlays in {args.show_dir}" if shown else ""), flush=True)
    return 0


def _report(problems: list[str]) -> int:
    n = len(problems)
    lines = [f"pss-bench predict: error: {n} problem{'s' if n != 1 else ''} (nothing was written):"]
    lines += [f"  {i}. {p}" for i, p in enumerate(problems, 1)]
    print("\n".join(lines), file=sys.stderr, flush=True)
    return 2
