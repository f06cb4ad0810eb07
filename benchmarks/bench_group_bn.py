"""Where pss_s1 loses its start on PSS-Synth: the BatchNorm running statistics of its heads.

A finished ``pss_s1`` (or any group-context) run of ``benchmarks/bench_synth.py`` is scored three
ways, each user's model predicting as its run predicts (in batches of one group):

- as trained;
- with the running statistics (``running_mean``, ``running_var``) of every BatchNorm under each
  ``--reset`` prefix put back to the stand-in's the run started from, every weight kept as trained.

Notation: θ = the run's weights after adaptation, μ/σ² = BN running statistics, μ₀/σ²₀ = the
stand-in's. A variant scores the network (θ, μ₀, σ²₀ under the prefix; μ, σ² elsewhere). If the
score comes back toward the stand-in's start, the loss was in the statistics that the adaptation's
train-mode forward passes re-estimated (on the users' group batches, a small group filled with
duplicates of its photos), not in the learned weights.

Measured (VGG-16, users 1-5, the table's run, docs/synth_benchmark.md#pss-s1-drop): as trained
26.03; group module's statistics reset 31.72; every decode-head statistic reset 32.96; the start 34.23.

    python benchmarks/bench_group_bn.py --run work_dirs/bench_synth/pss_s1_vgg16_seed0
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_synth import parse_users  # noqa: E402

RUNNING = ("running_mean", "running_var")


def reset_running_stats(state: dict, reference: dict, prefix: str) -> list[str]:
    """Put ``reference``'s BN running statistics into ``state`` (in place) for every key under
    ``prefix`` (``prefix`` itself or ``prefix.``…) that ends in ``running_mean``/``running_var``.
    Weights, biases and ``num_batches_tracked`` are left. Returns the keys replaced."""
    keys = [k for k in state
            if (k == prefix or k.startswith(prefix + ".")) and k.rsplit(".", 1)[-1] in RUNNING]
    missing = [k for k in keys if k not in reference]
    if missing:
        raise KeyError(f"the reference has no {missing[0]} (and {len(missing) - 1} more)")
    for k in keys:
        state[k] = reference[k].clone()
    return keys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True,
                        help="a finished bench_synth run folder (result.json, id<k>/config.py, id<k>/iter_*.pth)")
    parser.add_argument("--users", type=parse_users, help="default: the run's users")
    parser.add_argument("--reset", action="append",
                        help="segmentor key prefix whose BN running statistics go back to the stand-in's "
                             "(repeatable; default: decode_head.1.group_context and decode_head)")
    args = parser.parse_args()
    prefixes = args.reset or ["decode_head.1.group_context", "decode_head"]
    result_file = args.run / "result.json"
    if not result_file.is_file():
        parser.error(f"--run {args.run}: no result.json (not a finished run)")
    record = json.loads(result_file.read_text())
    users = args.users or sorted(int(u) for u in record["users"])

    import torch
    from mmengine.config import Config

    from pss_bench.commands.predict import load_model
    from pss_bench.harness.standin import standin_dir
    from pss_bench.inference.predict import predict_user_as_configured
    from pss_bench.scoring import score_predictions

    name = record.get("extra", {}).get("pretrained_name") or ""
    standin = standin_dir() / name
    if not name.startswith("standin-") or not standin.is_file():
        parser.error(f"--run {args.run}: its stand-in {name or '(none)'} is not in {standin_dir()}")
    reference = torch.load(standin, map_location="cpu", weights_only=True)["state_dict"]
    data_root = record["extra"]["data_root"]
    with tempfile.TemporaryDirectory() as tmp:
        for variant in [None, *prefixes]:
            pred = Path(tmp) / f"pred{len(list(Path(tmp).iterdir()))}"
            replaced = 0
            for user in users:
                folder = args.run / f"id{user}"
                checkpoint = json.loads((folder / "done.json").read_text())["checkpoint"]
                cfg = Config.fromfile(str(folder / "config.py"))
                model = load_model(cfg, Path(checkpoint))
                segmentor = getattr(model, "segmentor", model)
                if variant:
                    state = segmentor.state_dict()
                    replaced = len(reset_running_stats(state, reference, variant))
                    segmentor.load_state_dict(state, strict=True)
                model.eval()
                with torch.no_grad():
                    predict_user_as_configured(model, cfg, data_root, user, pred)
            mean = score_predictions(pred, data_root, users=users, progress=False).mean
            what = "as trained" if variant is None else f"BN statistics under {variant} reset ({replaced} tensors)"
            print(f"{what}: FIoU {mean['fiou']:.2f}, MIoU {mean['miou']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
