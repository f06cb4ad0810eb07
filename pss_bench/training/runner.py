"""One ``pss-bench run``: adapt to each user, predict, score, and write one result record."""
from __future__ import annotations

import gc
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from pss_bench.training.checkpoint import harness_checkpoint
from pss_bench.training.config import RunOptions, build_config, resolve_pretrained

DONE = "done.json"


class RunError(RuntimeError):
    """A run that cannot start or continue, with a message for the user."""


def _banner(text: str) -> None:
    line = "!" * 78
    print(f"{line}\n{text}\n{line}", file=sys.stderr, flush=True)


def _last_checkpoint(user_dir: Path) -> Path | None:
    marker = user_dir / "last_checkpoint"  # written by MMEngine's CheckpointHook
    if marker.is_file():
        path = Path(marker.read_text().strip())
        if path.is_file():
            return path
    return None


def _train(opts: RunOptions, user: int | list[int], train_dir: Path, pretrained: str | None,
           cfg=None, init_from: Path | None = None):
    """Train one user with ``opts.method`` into ``train_dir``; returns ``(cfg, final model)``.

    ``cfg``: the run's config when the caller already built it (default: :func:`build_config`).
    ``init_from``: a harness checkpoint whose weights initialise the model (PSS step 2 fine-tunes the
    step-1 model). With ``opts.resume`` the run continues from ``train_dir``'s last checkpoint.
    """
    from mmengine.model import is_model_wrapper

    from pss_bench.training.quiet import HarnessRunner

    train_dir.mkdir(parents=True, exist_ok=True)
    if cfg is None:
        cfg = build_config(opts, user, str(train_dir), pretrained)
    last = _last_checkpoint(train_dir) if opts.resume else None
    if last is not None:
        print(f"[pss-bench] user {user}: resuming from {last}", flush=True)
        cfg.load_from, cfg.resume = harness_checkpoint(last), True
    elif init_from is not None:
        cfg.load_from, cfg.resume = harness_checkpoint(init_from), False
    runner = HarnessRunner.from_cfg(cfg)
    runner.train()
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    if opts.select == "best-on-target":
        best = sorted(train_dir.glob("best_*.pth"))
        if best:
            from mmengine.runner import load_checkpoint
            load_checkpoint(model, harness_checkpoint(best[-1]), map_location="cpu")
    return cfg, model


def _predict(model, cfg, opts: RunOptions, user: int, pred_dir: Path) -> int:
    from pss_bench.training.predict import predict_user, predict_user_groups

    group = cfg.get("group_inference")
    if group:
        return predict_user_groups(model, cfg, opts.data_root, user, pred_dir, batch_size=group["batch_size"],
                                   short_side=opts.settings["test_short"], seed=group.get("seed", 1))
    return predict_user(model, cfg, opts.data_root, user, pred_dir)


def _finished_checkpoint(train_dir: Path) -> Path | None:
    """The final checkpoint of a finished training in ``train_dir`` (marked by ``done.json``)."""
    marker = train_dir / DONE
    if marker.is_file():
        path = Path(json.loads(marker.read_text())["checkpoint"])
        if path.is_file():
            return path
    return None


def _mark_done(train_dir: Path, **info) -> None:
    ckpt = _last_checkpoint(train_dir)
    tmp = train_dir / (DONE + ".tmp")
    tmp.write_text(json.dumps(dict(info, checkpoint=str(ckpt) if ckpt else None)))
    tmp.replace(train_dir / DONE)


def _adapt_user(opts: RunOptions, user: int | list[int], user_dir: Path, pretrained: str | None):
    """Adapt to one user; PSS step 2 first reuses or trains step 1 and writes its pseudo labels."""
    if opts.method != "pss_s2":
        return _train(opts, user, user_dir, pretrained)
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS

    from pss_bench.training.pseudo import write_pseudo_labels

    s1_opts = replace(opts, method="pss_s1", cfg_options={})
    s1_dir, pseudo_dir = user_dir / "s1", user_dir / "pseudo"
    s1_ckpt = _finished_checkpoint(s1_dir)
    s1_model = s1_cfg = None
    if s1_ckpt is None:
        print(f"[pss-bench] user {user}: step 1 (pss_s1)", flush=True)
        s1_cfg, s1_model = _train(s1_opts, user, s1_dir, pretrained)
        _mark_done(s1_dir, user=user, method="pss_s1")
        s1_ckpt = _finished_checkpoint(s1_dir)
    else:
        print(f"[pss-bench] user {user}: reusing finished step 1 in {s1_dir}", flush=True)
    s2_cfg = build_config(opts, user, str(user_dir / "s2"), pretrained)
    s2_cfg.train_dataloader.dataset.pseudo.pseudo_dir = str(pseudo_dir)
    step2 = s2_cfg.pseudo_label
    if not (pseudo_dir / f"id{user}" / "selected.txt").is_file():
        if s1_model is None:
            init_default_scope("mmseg")
            s1_cfg = build_config(s1_opts, user, str(s1_dir), pretrained)
            s1_model = MODELS.build(s1_cfg.model)
            load_checkpoint(s1_model, harness_checkpoint(s1_ckpt), map_location="cpu")
        selected = write_pseudo_labels(
            s1_model, s1_cfg, opts.data_root, user, pseudo_dir, ratio=step2["ratio"],
            batch_size=s1_cfg.group_inference["batch_size"], short_side=opts.settings["test_short"],
            seed=s1_cfg.group_inference.get("seed", 1))
        print(f"[pss-bench] user {user}: {len(selected)} pseudo-labelled photos "
              f"(lowest-entropy {step2['ratio']:.0%})", flush=True)
    del s1_model
    gc.collect()
    print(f"[pss-bench] user {user}: step 2 (pss_s2, init from {step2['init']})", flush=True)
    return _train(opts, user, user_dir / "s2", pretrained, cfg=s2_cfg,
                  init_from=s1_ckpt if step2["init"] == "step1" else None)


def _init_cpu_process_group() -> None:
    """Under torchrun without CUDA, start the gloo process group here: MMEngine's pytorch launcher
    calls ``torch.cuda.set_device`` unconditionally. The Runner then finds it initialised."""
    import torch
    import torch.distributed as dist

    if not torch.cuda.is_available() and not dist.is_initialized():
        dist.init_process_group("gloo", init_method="env://")


def _check_inputs(opts: RunOptions, users: list[int]) -> None:
    """Fail before any training on what would otherwise fail later."""
    from pss_bench.data.layout import cluster_list_name, user_dir

    if opts.target_users not in ("per-user", "mix-all", "mix-sample"):
        raise RunError(f"--target-users must be per-user, mix-all or mix-sample, got {opts.target_users!r}")
    if opts.target_users != "per-user" and opts.method == "pss_s2":
        raise RunError("pss_s2 runs per user (its pseudo labels are per user); use --target-users per-user")
    if opts.groups is not None:
        missing = [str(user_dir(opts.data_root, u) / cluster_list_name(opts.groups)) for u in users
                   if not (user_dir(opts.data_root, u) / cluster_list_name(opts.groups)).is_file()]
        if missing:
            raise RunError(f"--groups {opts.groups}: no grouping list {missing[0]}"
                           + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                           + f"; write it with: pss-bench data cluster {opts.data_root} --k {opts.groups}")


def run(opts: RunOptions) -> dict:
    """Adapt, predict and score every requested user; returns the result record.

    ``per-user`` (the benchmark): one adaptation per user, in ``WORK/id<k>/``. ``mix-all`` /
    ``mix-sample`` (paper Table 5): one model adapted to the pooled photos of all requested users
    (or a 1/15 sample), in ``WORK/mix/``, then scored per user.
    """
    from mmengine.dist import barrier, get_rank

    from pss_bench.data.layout import find_users
    from pss_bench.models.pretrained import PretrainedWeightsError, sha256_file
    from pss_bench.methods import METHODS, configs_dir
    from pss_bench.records import build_record, write_record
    from pss_bench.scoring import score_predictions
    from pss_bench.training.quiet import silence_known_warnings

    silence_known_warnings()
    if opts.launcher == "pytorch":
        _init_cpu_process_group()
    work = Path(opts.work_dir)
    present = find_users(opts.data_root)
    users = opts.users or present
    if not users:
        raise RunError(f"no user folders under {opts.data_root}/personal")
    absent = sorted(set(users) - set(present))
    if absent:
        raise RunError(f"users {absent} have no folder under {opts.data_root}/personal")
    _check_inputs(opts, users)
    record_path = work / "result.json"
    if record_path.exists() and not opts.resume:
        raise RunError(f"{work} already holds a finished run ({record_path}); "
                       "choose another --work-dir or pass --resume")
    try:
        pretrained = resolve_pretrained(opts.pretrained, opts.backbone, opts.preset, opts.data_root)
    except (FileNotFoundError, PretrainedWeightsError) as err:
        raise RunError(str(err)) from None
    from pss_bench.models.standin import is_standin, standin_info

    standin = standin_info(pretrained) if pretrained and is_standin(pretrained) else None
    if standin is not None:
        print(f"[pss-bench] {opts.backbone}: initialising the whole segmentor from the PSS-Synth "
              f"source-only stand-in {pretrained} (sha256 {standin['sha256'][:12]}), not ImageNet weights",
              flush=True)
    if pretrained is None:
        _banner(f"WARNING: {opts.backbone} backbone starts from RANDOM initialisation (no ImageNet "
                "weights were given or found offline).\nThe record says so and the leaderboard marks "
                "the row; pass --pretrained PATH for numbers comparable to the paper.")
    pred_dir = work / "predictions"
    started = time.time()
    if opts.target_users == "per-user":
        plan = [(work / f"id{user}", user, [user]) for user in users]
    else:
        plan = [(work / "mix", users, users)]
    for train_dir, train_users, scored in plan:
        label = f"user {train_users}" if isinstance(train_users, int) else f"users {train_users} pooled"
        if (train_dir / DONE).is_file() and opts.resume:
            print(f"[pss-bench] {label}: already finished, skipped", flush=True)
            continue
        train_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        cfg, model = _adapt_user(opts, train_users, train_dir, pretrained)
        if get_rank() == 0:
            n = sum(_predict(model, cfg, opts, user, pred_dir) for user in scored)
            cfg.dump(str(train_dir / "config.py"))
            _mark_done(train_dir, users=scored, method=opts.method, predictions=n,
                       seconds=round(time.time() - t0, 1))
        barrier()  # other processes wait while rank 0 predicts
        del model
        gc.collect()
    if get_rank() != 0:
        return {}
    result = score_predictions(pred_dir, opts.data_root, users=users, protocol=opts.protocol)
    config_path = METHODS[opts.method].config(opts.backbone)
    record = build_record(
        name=f"{METHODS[opts.method].paper_name} (pss-bench {opts.preset})", method=opts.method,
        backbone=opts.backbone, protocol=opts.protocol, source="run",
        users=result.users, mean=result.mean,
        pretrained=sha256_file(pretrained) if pretrained else None,
        selection=opts.select,
        config=dict(path=os.path.relpath(config_path, configs_dir().parent),
                    sha256=sha256_file(config_path)),
        extra=dict(preset=opts.preset, settings=opts.settings, seed=opts.seed, groups=opts.groups,
                   target_users=opts.target_users, random_init=pretrained is None,
                   pretrained_name=os.path.basename(pretrained) if pretrained else None,
                   standin=standin,
                   data_root=str(opts.data_root), minutes=round((time.time() - started) / 60, 2)),
    )
    write_record(record_path, record)
    print(result.format_tables(), flush=True)
    print(f"[pss-bench] record: {record_path}\n[pss-bench] predictions: {pred_dir}", flush=True)
    return record
