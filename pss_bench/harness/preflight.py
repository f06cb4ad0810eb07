"""Everything ``pss-bench run`` checks before the first iteration, reported as one numbered list.

A run of the paper preset trains for hours before it predicts: a missing photo, a junk weights file,
a crop the discriminator cannot take or a read-only work dir must be found before that. Each check
adds problems (a string naming the option or file) instead of raising, so one invocation lists all
of them; :func:`preflight` raises :class:`PreflightError` (a ``RunError``) when any is found and
writes nothing.

Checks, in order: the launcher's environment; the users; the data root as ``pss-bench data check``
does it for those users (and the source list); the stage plan and the routing of ``--cfg-options``
(``plan_stages``); per train stage the built config, the built model, the crop against the model
(the discriminator's smallest input, one dry forward of the segmentor); the weights (resolved and
loaded into the backbone; a stand-in not cached yet is only reported, "a stand-in will be built
(about N min, ...)": the run builds it after these checks passed); the work dir (writable; resume /
finished-run rules).
"""
from __future__ import annotations

import contextlib
import copy
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pss_bench.harness.config import RunOptions
from pss_bench.harness.plan import RunError, plan_stages, stage_cfg_options, work_dir_problems
from pss_bench.harness.stages import Stage, StageError

if TYPE_CHECKING:
    from pss_bench.harness.standin import PendingStandin

# Variables torchrun / srun set for every process (MMEngine's launchers read them).
LAUNCHER_ENV = {"pytorch": ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"),
                "slurm": ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_NODELIST")}


class PreflightError(RunError):
    """The complete list of problems found before training."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems)
        self.problems = list(problems)

    def __str__(self) -> str:
        n = len(self.problems)
        width = len(str(n))
        lines = [f"{n} problem{'s' if n != 1 else ''} found before training (nothing was written):"]
        for i, text in enumerate(self.problems, 1):
            first, *rest = text.split("\n")
            lines.append(f"  {i:>{width}}. {first}")
            lines += [f"  {' ' * width}  {line}" for line in rest]
        return "\n".join(lines)


@dataclass
class Plan:
    """What the checks resolved, for the run to use."""

    users: list[int]
    stages: list[Stage]
    stage_options: dict[str, dict]
    pretrained: str | None
    standin: PendingStandin | None = None  # a stand-in to build: by the run after the checks, never here


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    text = text[0] if text else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def launcher_problems(launcher: str) -> list[str]:
    missing = [v for v in LAUNCHER_ENV.get(launcher, ()) if v not in os.environ]
    if not missing:
        return []
    how = ("torchrun --nproc_per_node N -m pss_bench.cli run --launcher pytorch ..." if launcher == "pytorch"
           else "srun ... python -m pss_bench.cli run --launcher slurm ...")
    return [f"--launcher {launcher}: not started by {'torchrun' if launcher == 'pytorch' else 'srun'} "
            f"({', '.join(missing)} unset); start it with `{how}`, or drop --launcher"]


def data_problems(data_root: str, users: list[int], k: int) -> list[str]:
    """``pss-bench data check`` for the users of the run (labels, lists, photos, the VOC source)."""
    from pss_bench.data.check import check_dataset
    from pss_bench.data.layout import cluster_list_name

    report = check_dataset(data_root, k=k, users=users, source=True)
    out = [f"--data-root: {Path(data_root) / p.path}: {p.message}" for p in report.problems]
    if any(p.path.endswith(cluster_list_name(k)) for p in report.problems):
        out.append(f"--groups {k}: write the missing grouping lists with: "
                   f"pss-bench data cluster {data_root} --k {k}")
    return out


def batch_problems(data_root: Path, batch_size: int) -> list[str]:
    """A batch larger than the source list: every batch would hold some source image twice or more
    (and memory grows with it unbounded). The source list's own problems are data_problems'."""
    from pss_bench.data.layout import VOC_TRAIN_LIST, ListFormatError, parse_list, voc_dir

    listed = voc_dir(data_root) / VOC_TRAIN_LIST
    try:
        images = len(parse_list(listed))
    except (OSError, ListFormatError):
        return []
    if images and batch_size > images:
        return [f"--batch-size {batch_size}: more than the {images} source images of {listed}, so every "
                f"batch would repeat images; use at most {images} (the released schedule: 8)"]
    return []


def writable_problems(work: Path) -> list[str]:
    """``work`` can be created and written to, found by a temporary file in its nearest existing
    folder (removed at once: nothing is left behind)."""
    probe = work
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return [f"--work-dir {work}: {probe} is a file, not a folder"]
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        return [f"--work-dir {work}: cannot write in {probe} ({err.strerror or err})"]
    return []


def _segmentor(model):
    return getattr(model, "segmentor", model)


@contextlib.contextmanager
def _quiet_mmengine():
    """MMEngine's current logger at WARNING for the duration (restored afterwards)."""
    from mmengine.logging import MMLogger

    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def model_problems(opts: RunOptions, stage: Stage, cfg, crop: int, load_weights: bool) -> list[str]:
    """Build the stage's model; check the crop against it and (``load_weights``) the weights."""
    import torch
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from pss_bench.baselines.discriminator import MIN_INPUT_SIZE, FCDiscriminator

    where = f"stage {stage.name}: " if stage.name != "train" else ""
    given = " (check --cfg-options)" if opts.cfg_options else ""
    init_default_scope("mmseg")
    try:
        model = MODELS.build(cfg.model)
    except Exception as err:  # a bad key or value reaches the model's constructor
        return [f"{where}the model of {stage.get('method') or opts.method} cannot be built{given}: {_short(err)}"]
    out = []
    if crop < MIN_INPUT_SIZE and any(isinstance(m, FCDiscriminator) for m in model.modules()):
        # Discriminators see the outputs upsampled to the crop (baselines/discriminator.py).
        return [f"--crop {crop}: {opts.method}'s discriminator (FCDiscriminator, five stride-2 convs) "
                f"needs crops of at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE}; use --crop {MIN_INPUT_SIZE} or more"]
    seg = _segmentor(model)
    seg.eval()
    try:
        with torch.no_grad():
            seg._forward(torch.zeros(1, 3, crop, crop))
    except Exception as err:
        out.append(f"--crop {crop}: the segmentor cannot run on {crop}x{crop} crops ({_short(err)})")
    out += training_problems(opts, stage, cfg, model)
    if load_weights and getattr(seg, "backbone", None) is not None:
        try:
            with _quiet_mmengine():  # the init report (one entry per tensor) belongs in the run's log
                seg.backbone.init_weights()
        except Exception as err:
            out.append(f"--pretrained {opts.pretrained}: {_short(err)}")
    return out


def training_problems(opts: RunOptions, stage: Stage, cfg, model) -> list[str]:
    """Build what the Runner builds before its first iteration: the optimiser wrapper(s), the
    parameter schedulers and the hooks, with the options (a wrong optimiser type or keyword, a
    typo in a key fails here, not after the work dir exists)."""
    from types import SimpleNamespace

    from mmengine.logging import MMLogger
    from mmengine.registry import HOOKS
    from mmengine.runner import Runner

    where = f"stage {stage.name}: " if stage.name != "train" else ""
    given = " (check --cfg-options)" if opts.cfg_options else ""
    out = []
    fake = SimpleNamespace(model=model, logger=MMLogger.get_current_instance(),
                           _train_loop=cfg.get("train_cfg"), train_dataloader=[None])  # len() for epoch conversion
    fake._build_param_scheduler = lambda scheduler, wrapper: Runner._build_param_scheduler(fake, scheduler, wrapper)
    try:
        with _quiet_mmengine():
            fake.optim_wrapper = Runner.build_optim_wrapper(fake, copy.deepcopy(cfg.optim_wrapper))
    except Exception as err:  # a wrong type, keyword or value for the optimiser or its wrapper
        return [f"{where}the optimiser of {stage.get('method') or opts.method} cannot be built{given}: {_short(err)}"]
    if cfg.get("param_scheduler"):
        try:
            with _quiet_mmengine():
                Runner.build_param_scheduler(fake, copy.deepcopy(cfg.param_scheduler))
        except Exception as err:
            out.append(f"{where}the learning-rate schedule cannot be built{given}: {_short(err)}")
    for hooks in (cfg.get("default_hooks") or {}).values(), cfg.get("custom_hooks") or []:
        for hook in hooks:
            if not hook:
                continue
            try:
                built = HOOKS.build(copy.deepcopy(hook))
            except Exception as err:
                out.append(f"{where}hook {hook.get('type', '?')} cannot be built{given}: {_short(err)}")
                continue
            out += [f"{where}{p}{given}" for p in checkpoint_hook_problems(built)]
    return out


def checkpoint_hook_problems(hook) -> list[str]:
    """MMEngine's ``CheckpointHook`` takes any keyword and hands the ones it does not know to
    ``Runner.save_checkpoint`` at the first save (mmengine 0.10.7, mmengine/hooks/checkpoint_hook.py:
    ``self.args = kwargs``, passed as ``**self.args``): a typo such as ``intervall`` would fail
    only after the first interval of training. Such keys must be arguments of save_checkpoint."""
    import inspect

    from mmengine.hooks import CheckpointHook
    from mmengine.runner import Runner

    if not isinstance(hook, CheckpointHook):
        return []
    params = inspect.signature(Runner.save_checkpoint).parameters
    unknown = sorted(k for k in getattr(hook, "args", {}) if k not in params)
    if not unknown:
        return []
    return [f"hook CheckpointHook does not take {', '.join(unknown)} (its keys: interval, by_epoch, "
            "save_optimizer, save_param_scheduler, out_dir, max_keep_ckpts, save_last, save_best, rule, "
            "filename_tmpl, ...)"]


def initialised_stage(stages: list[Stage]) -> Stage | None:
    """The first train stage not initialised from an earlier stage: the one ``--pretrained`` loads."""
    return next((s for s in stages if s.type == "train" and not s.get("init_from")), None)


def initialised_segmentor(opts: RunOptions, stages: list[Stage], stage_options: dict,
                           users: list[int]) -> dict | None:
    """The segmentor config that ``--pretrained`` initialises: that of the first train stage not
    initialised from an earlier stage (a stand-in is trained for this architecture). None when it
    cannot be built (the stage loop below reports why)."""
    from pss_bench.harness.config import build_config, find_segmentor

    stage = initialised_stage(stages)
    if stage is None:
        return None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = build_config(opts, users[:1] or [1], tmp, None, method=stage.get("method") or opts.method,
                               cfg_options=stage_cfg_options(stage, stage_options))
        return find_segmentor(cfg.model)
    except Exception:  # noqa: BLE001  (reported with its stage below)
        return None


def preflight(opts: RunOptions, extra_problems: list[str] | None = None) -> Plan:
    """Check everything ``run(opts)`` needs before it trains (see the module docstring).

    Args:
        extra_problems: problems the caller already found (e.g. unparsable ``--cfg-options``),
            listed first.
    Raises:
        PreflightError: one or more problems, all listed.
    """
    from pss_bench.data.layout import DEFAULT_K
    from pss_bench.data.users import resolve_users
    from pss_bench.harness.config import ConfigPathError, build_config, plan_pretrained
    from pss_bench.harness.standin import PendingStandin
    from pss_bench.models.pretrained import PretrainedWeightsError

    problems = list(extra_problems or [])
    problems += launcher_problems(opts.launcher)
    root = Path(opts.data_root)
    chosen = resolve_users(root, opts.users or None)
    present, users = chosen.present, chosen.users
    if not root.is_dir():
        problems.append(f"--data-root {root}: no such folder")
    elif not users:
        problems.append(f"--data-root {root}: no user folders under {root / 'personal'}")
    absent = chosen.absent
    if root.is_dir() and absent:
        problems.append(f"--users: {', '.join(map(str, absent))} ha{'s' if len(absent) == 1 else 've'} no "
                        f"folder under {root / 'personal'} (present: {', '.join(map(str, present)) or 'none'})")
    problems += batch_problems(root, opts.settings["batch_size"])
    if opts.target_users not in ("per-user", "mix-all", "mix-sample"):
        problems.append(f"--target-users must be per-user, mix-all or mix-sample, got {opts.target_users!r}")

    stages, stage_options = [], {}
    if not extra_problems:  # --cfg-options that did not parse cannot be routed
        try:
            stages, stage_options = plan_stages(opts)
        except (StageError, FileNotFoundError) as err:
            problems.append(f"--cfg-options: {err}" if opts.cfg_options and isinstance(err, StageError)
                            else str(err))
    if opts.target_users != "per-user" and any(s.type == "pseudo_labels" for s in stages):
        problems.append(f"--target-users {opts.target_users}: {opts.method} runs per user (its pseudo "
                        "labels are per user); use --target-users per-user")

    pretrained = pending = None
    try:
        pretrained = plan_pretrained(opts.pretrained, opts.backbone, opts.preset, opts.data_root,
                                     segmentor=initialised_segmentor(opts, stages, stage_options, users))
    except (FileNotFoundError, PretrainedWeightsError) as err:
        problems.append(f"--pretrained {opts.pretrained}: {err}")
    if isinstance(pretrained, PendingStandin):
        # A stand-in not built yet: reported, built by the run once every check passed. The stages
        # are checked without it (it is trained for the very segmentor they build).
        pretrained, pending = None, pretrained

    k = opts.groups or DEFAULT_K
    crop = opts.settings["crop"]
    weights_checked = False
    for stage in (s for s in stages if s.type == "train"):
        method = stage.get("method") or opts.method
        try:
            with tempfile.TemporaryDirectory() as tmp:  # build_config names a work dir; none is made
                cfg = build_config(opts, users[:1] or [1], tmp, pretrained, method=method,
                                   cfg_options=stage_cfg_options(stage, stage_options))
        except ConfigPathError as err:
            problems.append(f"{method}: {err}")
            continue
        except Exception as err:  # merge_from_dict on a value of the wrong kind
            problems.append(f"--cfg-options: the config of {method} does not take them ({_short(err)})")
            continue
        target = cfg.train_dataloader.dataset.get("target", {})
        k = opts.groups or target.get("cluster_k", k) or k
        load = pretrained is not None and not weights_checked and not stage.get("init_from")
        weights_checked |= load
        problems += model_problems(opts, stage, cfg, crop, load)
    if root.is_dir() and users and not absent:
        problems += data_problems(str(root), users, k)
    work = Path(opts.work_dir)
    problems += writable_problems(work)
    problems += work_dir_problems(opts, work, users)
    if not 0 <= opts.seed < 2 ** 32:
        problems.append(f"--seed {opts.seed}: must be between 0 and {2 ** 32 - 1}")
    if problems:
        raise PreflightError(problems)
    if pending is not None:
        print(f"[pss-bench] --pretrained {opts.pretrained}: {pending.report()}", flush=True)
    return Plan(users, stages, stage_options, pretrained, pending)
