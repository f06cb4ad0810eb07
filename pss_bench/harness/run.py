"""One ``pss-bench run``: adapt to each user, predict, score, and write one result record."""
from __future__ import annotations

import gc
import json
import os
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pss_bench.harness.checkpoint import harness_checkpoint
from pss_bench.io import atomic_write_text, sha256_file
from pss_bench.harness.config import ConfigPathError, RunOptions, build_config, equivalent_command
# The run's plan and work-dir rules live in harness/plan.py (the pre-flight checks them without
# importing this module); importers of these names from here keep working.
from pss_bench.harness.plan import (RUN_STATE, RunError, plan_stages, run_identity,  # noqa: F401
                                    saved_anything, stage_cfg_options, work_dir_problems)
from pss_bench.harness.stages import Stage

DONE = "done.json"
DEFAULT_OVERLAYS = 4  # colour overlays per user written by a run (WORK/show/id<k>/)
KEEP_CHECKPOINTS = 1  # Runner checkpoints kept per training: resume needs only the newest


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


def _readable(path: Path) -> bool:
    """A torch checkpoint is a zip archive whose directory is written last: a file truncated by a
    kill has none, which this finds without loading hundreds of MB."""
    return zipfile.is_zipfile(path)


def _resume_checkpoint(train_dir: Path, user) -> Path | None:
    """The newest readable checkpoint in ``train_dir`` to resume from, saying so when the last one
    is unreadable and an earlier one (or iteration 0) is used instead."""
    last = _last_checkpoint(train_dir)
    if last is None or _readable(last):
        return last
    earlier = sorted((p for p in train_dir.glob("iter_*.pth") if p != last and p.stem[5:].isdigit()),
                     key=lambda p: int(p.stem[5:]), reverse=True)
    fallback = next((p for p in earlier if _readable(p)), None)
    print(f"[pss-bench] user {user}: checkpoint {last} is unreadable (truncated by a kill?); "
          + (f"resuming from {fallback.name} instead" if fallback else "no earlier checkpoint is "
             "readable, training restarts from iteration 0"), file=sys.stderr, flush=True)
    return fallback


def _train(opts: RunOptions, user: int | list[int], train_dir: Path, cfg, init_from: Path | None = None):
    """Train ``cfg`` for one user into ``train_dir``; returns the final model.

    ``init_from``: a harness checkpoint whose weights initialise the model (a later stage fine-tunes
    an earlier one). With ``opts.resume`` training continues from ``train_dir``'s last checkpoint.
    """
    from mmengine.model import is_model_wrapper

    from pss_bench.harness.runner import HarnessRunner

    train_dir.mkdir(parents=True, exist_ok=True)
    # A Runner checkpoint of ResNet-50 + optimiser state is ~400 MB; MMEngine deletes the older one
    # only after the newer one is written, so a kill while saving still leaves one to resume from.
    cfg.default_hooks.checkpoint.setdefault("max_keep_ckpts", KEEP_CHECKPOINTS)
    last = _resume_checkpoint(train_dir, user) if opts.resume else None
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
    return model


def _load_model(cfg, checkpoint: Path):
    """The model of ``cfg`` with the weights of a harness checkpoint (a finished stage reused)."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS

    init_default_scope("mmseg")
    model = MODELS.build(cfg.model)
    load_checkpoint(model, harness_checkpoint(checkpoint), map_location="cpu")
    return model


def _predict_logged(model, cfg, opts: RunOptions, user: int, pred_dir: Path, show_dir: Path,
                    overlays: int) -> int:
    """:func:`~pss_bench.inference.predict.predict_user_as_configured` with a line before and after
    (prediction takes a while on a CPU), then ``overlays`` colour overlays of the first photos into
    ``show_dir/id<k>/``."""
    from pss_bench.data.layout import annotated_entries
    from pss_bench.inference.overlay import write_overlays
    from pss_bench.inference.predict import predict_user_as_configured

    t0 = time.time()
    print(f"[pss-bench] user {user}: predicting {len(annotated_entries(opts.data_root, user))} annotated "
          f"photos -> {pred_dir / f'id{user}'}", flush=True)
    n = predict_user_as_configured(model, cfg, opts.data_root, user, pred_dir)
    shown = write_overlays(opts.data_root, user, pred_dir, show_dir, limit=overlays) if overlays else 0
    print(f"[pss-bench] user {user}: {n} predictions in {time.time() - t0:.1f} s"
          + (f", {shown} overlays in {show_dir / f'id{user}'}" if shown else ""), flush=True)
    return n


def _finished_checkpoint(train_dir: Path) -> Path | None:
    """The final checkpoint of a finished training in ``train_dir`` (marked by ``done.json``)."""
    marker = train_dir / DONE
    if marker.is_file():
        path = json.loads(marker.read_text()).get("checkpoint")
        if path and Path(path).is_file():
            return Path(path)
    return None


def _mark_done(train_dir: Path, **info) -> None:
    ckpt = _last_checkpoint(train_dir)
    atomic_write_text(train_dir / DONE, json.dumps(dict(info, checkpoint=str(ckpt) if ckpt else None)))


@dataclass
class _StageOutput:
    """What a finished stage hands to later ones."""

    folder: Path
    cfg: object = None             # train stages: the built config
    checkpoint: Path | None = None  # train stages: the final checkpoint
    model: object = None            # train stages: the trained model, while still in memory


@dataclass
class StageContext:
    """What a stage runner gets: the run, the user, and the outputs of the stages before it."""

    opts: RunOptions
    user: int | list[int]
    pretrained: str | None
    options: dict[str, dict]             # routed --cfg-options per train stage
    outputs: dict[str, _StageOutput]     # finished earlier stages by name
    single: bool                         # a one-stage method (works in WORK/id<k>/ itself)

    def model_of(self, name: str):
        """The trained model of an earlier train stage (rebuilt from its checkpoint if reused)."""
        out = self.outputs[name]
        if out.model is None:
            out.model = _load_model(out.cfg, out.checkpoint)
        return out.model


StageRunner = Callable[[StageContext, Stage, Path, bool], tuple[_StageOutput, dict]]
STAGE_RUNNERS: dict[str, StageRunner] = {}
"""``stage type -> runner(ctx, stage, folder, last) -> (output, log entry)``; one per
:data:`pss_bench.harness.stages.STAGE_TYPES` entry."""


def stage_runner(kind: str) -> Callable[[StageRunner], StageRunner]:
    def deco(fn: StageRunner) -> StageRunner:
        STAGE_RUNNERS[kind] = fn
        return fn
    return deco


@stage_runner("train")
def _train_stage(ctx: StageContext, stage: Stage, folder: Path, last: bool) -> tuple[_StageOutput, dict]:
    opts, user = ctx.opts, ctx.user
    method = stage.get("method") or opts.method
    cfg = build_config(opts, user, str(folder), ctx.pretrained, method=method,
                       cfg_options=stage_cfg_options(stage, ctx.options))
    entry = dict(method=method, cfg_options=sorted(ctx.options[stage.name]))
    if stage.get("pseudo_labels"):
        if "pseudo" not in cfg.train_dataloader.dataset:
            raise RunError(f"{method}: stage {stage.name} takes pseudo labels but its config has no "
                           "train_dataloader.dataset.pseudo branch")
        cfg.train_dataloader.dataset.pseudo.pseudo_dir = str(ctx.outputs[stage.get("pseudo_labels")].folder)
    done = _finished_checkpoint(folder) if not ctx.single else None
    if done is not None:
        print(f"[pss-bench] user {user}: reusing finished stage {stage.name} in {folder}", flush=True)
        return _StageOutput(folder, cfg, done, _load_model(cfg, done) if last else None), dict(entry, reused=True)
    if not ctx.single:
        print(f"[pss-bench] user {user}: stage {stage.name} (train {method})", flush=True)
    init = ctx.outputs[stage.get("init_from")].checkpoint if stage.get("init_from") else None
    model = _train(opts, user, folder, cfg, init_from=init)
    cfg.dump(str(folder / "config.py"))  # what this stage ran, harness overrides listed
    if not ctx.single:
        _mark_done(folder, user=user, stage=stage.name, method=method)
    return _StageOutput(folder, cfg, _last_checkpoint(folder), model), entry


@stage_runner("pseudo_labels")
def _pseudo_label_stage(ctx: StageContext, stage: Stage, folder: Path, last: bool
                        ) -> tuple[_StageOutput, dict]:
    from pss_bench.inference.pseudo_labels import LABELLERS, LabelSource

    if isinstance(ctx.user, list):
        raise RunError(f"stage {stage.name}: pseudo labels are made per user")
    name = stage.get("labeller", "entropy_ranking")
    if name not in LABELLERS:
        raise RunError(f"stage {stage.name}: unknown labeller {name!r} (known: {', '.join(sorted(LABELLERS))})")
    sources = stage.get("models") or [stage.get("model")]
    entry = dict(labeller=name, models=list(sources))
    if (folder / DONE).is_file():
        print(f"[pss-bench] user {ctx.user}: reusing pseudo labels in {folder}", flush=True)
        return _StageOutput(folder), dict(entry, reused=True)
    options = {k: v for k, v in stage.options.items() if k not in ("model", "models", "labeller")}
    short = ctx.opts.settings["test_short"]
    try:
        count = LABELLERS[name]([LabelSource(ctx.model_of(s), ctx.outputs[s].cfg, short) for s in sources],
                                ctx.opts.data_root, ctx.user, folder, **options)
    except TypeError as err:  # an option the labeller does not take
        raise RunError(f"stage {stage.name}: labeller {name}: {err}") from None
    atomic_write_text(folder / DONE, json.dumps(dict(user=ctx.user, stage=stage.name, labelled=count)))
    return _StageOutput(folder), dict(entry, labelled=count)


def _adapt_user(opts: RunOptions, user: int | list[int], user_dir: Path, pretrained: str | None,
                stages: list[Stage], options: dict[str, dict], log: list[dict]):
    """Run the method's stages for one user (or one pooled set); returns ``(cfg, model)`` of the
    last stage. Finished stages are reused; each stage's summary is appended to ``log``."""
    ctx = StageContext(opts, user, pretrained, options, {}, single=len(stages) == 1)
    for index, stage in enumerate(stages):
        folder = user_dir if ctx.single else user_dir / stage.name
        t0 = time.time()
        out, entry = STAGE_RUNNERS[stage.type](ctx, stage, folder, index == len(stages) - 1)
        for earlier in ctx.outputs.values():  # only the newest stage's model stays in memory
            earlier.model = None
        gc.collect()
        ctx.outputs[stage.name] = out
        log.append(dict(name=stage.name, type=stage.type, **entry, seconds=round(time.time() - t0, 1)))
    final = ctx.outputs[stages[-1].name]
    return final.cfg, final.model


def _open_work_dir(opts: RunOptions, work: Path, users: list[int]) -> dict:
    """Check that ``work`` fits this invocation and return its state with a new attempt appended."""
    problems = work_dir_problems(opts, work, users)
    if problems:
        raise RunError(problems[0].removeprefix(f"--work-dir {work}: ").replace("\n", "\n  "))
    identity = run_identity(opts, users)
    state_path = work / RUN_STATE
    state = json.loads(state_path.read_text()) if state_path.is_file() else None
    if state is not None and not opts.resume:  # nothing saved: a new start, with this command's settings
        state = dict(identity=identity, attempts=state.get("attempts", []))
    state = state or dict(identity=identity, attempts=[])
    state["attempts"].append(dict(started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                  resumed=bool(opts.resume), seconds=0.0))
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_text(state_path, json.dumps(state, indent=1))
    return state


def _close_attempt(work: Path, state: dict, seconds: float) -> None:
    state["attempts"][-1]["seconds"] = round(seconds, 1)
    atomic_write_text(work / RUN_STATE, json.dumps(state, indent=1))


def _device() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.current_device()} ({torch.cuda.get_device_name()})"
    return "cpu"


def _init_cpu_process_group() -> None:
    """Under torchrun without CUDA, start the gloo process group here: MMEngine's pytorch launcher
    calls ``torch.cuda.set_device`` unconditionally. The Runner then finds it initialised."""
    import torch
    import torch.distributed as dist

    if not torch.cuda.is_available() and not dist.is_initialized():
        dist.init_process_group("gloo", init_method="env://")


def run(opts: RunOptions, overlays: int = DEFAULT_OVERLAYS, extra_problems: list[str] | None = None,
        argv: Sequence[str] | None = None) -> dict:
    """Check, adapt, predict and score every requested user; returns the result record.

    ``per-user`` (the benchmark): one adaptation per user, in ``WORK/id<k>/``. ``mix-all`` /
    ``mix-sample`` (paper Table 5): one model adapted to the pooled photos of all requested users
    (or a 1/15 sample), in ``WORK/mix/``, then scored per user. Everything that can be checked
    before training is (``harness/preflight.py``); ``overlays``: colour overlays written per user
    into ``WORK/show/id<k>/`` (0: none). ``argv``: the command line the record's provenance names
    (None: :func:`pss_bench.harness.config.equivalent_command` of ``opts``); nothing global is read.

    Raises:
        PreflightError: every problem found before training (nothing written).
        RunError: a problem found later.
    """
    from mmengine.dist import get_rank

    from pss_bench.harness.preflight import preflight
    from pss_bench.harness.runner import silence_known_warnings

    silence_known_warnings()
    plan = preflight(opts, extra_problems)
    if plan.standin is not None:  # reported by the pre-flight; built now that every check passed
        plan.pretrained = str(plan.standin.build())
    if opts.launcher == "pytorch":
        _init_cpu_process_group()
    work = Path(opts.work_dir)
    state = _open_work_dir(opts, work, plan.users) if get_rank() == 0 else None
    from pss_bench.models.standin import is_standin, standin_info

    standin = standin_info(plan.pretrained) if plan.pretrained and is_standin(plan.pretrained) else None
    if standin is not None:
        print(f"[pss-bench] {opts.backbone}: initialising the whole segmentor from the PSS-Synth "
              f"source-only stand-in {plan.pretrained} (sha256 {standin['sha256'][:12]}), not ImageNet "
              "weights", flush=True)
    if plan.pretrained is None:
        _banner(f"WARNING: {opts.backbone} backbone starts from RANDOM initialisation (no ImageNet "
                "weights were given or found offline).\nThe record says so and the leaderboard marks "
                "the row; pass --pretrained PATH for numbers comparable to the paper.")
    started = time.time()
    try:
        record = _adapt_all(opts, work, plan.users, plan.pretrained, plan.stages, plan.stage_options,
                            state, standin, overlays, argv=list(argv) if argv else equivalent_command(opts))
    finally:
        if state is not None:
            _close_attempt(work, state, time.time() - started)
    return record


def _adapt_all(opts: RunOptions, work: Path, users: list[int], pretrained: str | None,
               stages: list[Stage], stage_options: dict, state: dict | None, standin: dict | None = None,
               overlays: int = 0, *, argv: list[str]) -> dict:
    """Adapt, predict, score and record (``run``'s body after the checks); ``argv``: the command
    line of the record's provenance."""
    from mmengine.dist import barrier, get_rank

    from pss_bench.methods import METHODS, configs_dir
    from pss_bench.records import build_record, run_provenance, write_record
    from pss_bench.scoring import score_predictions

    pred_dir, record_path = work / "predictions", work / "result.json"
    started = time.time()
    if opts.target_users == "per-user":
        plan = [(work / f"id{user}", user, [user]) for user in users]
    else:
        plan = [(work / "mix", users, users)]
    stage_log: dict[str, list[dict]] = {}
    for train_dir, train_users, scored in plan:
        label = f"user {train_users}" if isinstance(train_users, int) else f"users {train_users} pooled"
        if (train_dir / DONE).is_file() and opts.resume:
            print(f"[pss-bench] {label}: already finished, skipped", flush=True)
            continue
        train_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        log = stage_log.setdefault(train_dir.name, [])
        try:
            cfg, model = _adapt_user(opts, train_users, train_dir, pretrained, stages, stage_options, log)
        except ConfigPathError as err:
            raise RunError(f"{opts.method}: {err}") from None
        if get_rank() == 0:
            n = sum(_predict_logged(model, cfg, opts, user, pred_dir, work / "show", overlays)
                    for user in scored)
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
                   pretrained_name=os.path.basename(pretrained) if pretrained else None, standin=standin,
                   data_root=str(opts.data_root), stages=stage_log),
        data_root=opts.data_root,
        provenance=run_provenance(argv, opts.cfg_options, _device(),
                                  resumes=sum(a["resumed"] for a in state["attempts"]),
                                  train_seconds=sum(a["seconds"] for a in state["attempts"][:-1])
                                  + time.time() - started),
    )
    write_record(record_path, record)
    print(result.format_tables(), flush=True)
    synth = record.get("dataset", {}).get("name") == "PSS-Synth"
    weights = ("the PSS-Synth source-only stand-in (not ImageNet)" if standin else
               "random initialisation" if pretrained is None else os.path.basename(pretrained))
    print(f"[pss-bench] ran {opts.method}/{opts.backbone} on {'the synthetic PSS-Synth data' if synth else opts.data_root}"
          f", users {','.join(map(str, users))}: {opts.settings['iters']} iterations per user and stage "
          f"({opts.preset} preset), starting from {weights}.", flush=True)
    shown = work / "show"
    print(f"[pss-bench] record: {record_path}\n[pss-bench] predictions: {pred_dir}"
          + (f"\n[pss-bench] overlays (photo | prediction | ground truth): {shown}" if shown.is_dir() else ""),
          flush=True)
    return record
