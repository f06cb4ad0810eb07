"""What a run is before it starts, shared by the pre-flight (``preflight.py``) and the run (``run.py``)
so that the pre-flight does not import the run that calls it: the stages of its method with the
``--cfg-options`` of each (:func:`plan_stages`), its identity (:func:`run_identity`: the settings a
resumed run must share) and the rules a work dir must satisfy (:func:`work_dir_problems`: finished,
unfinished, resumed).

Work dir notation: ``WORK/run.json`` (:data:`RUN_STATE`) = the identity it was started with and one
entry per attempt; a run *saved anything* when ``WORK`` holds a checkpoint, a ``done.json`` or its
``result.json``.
"""
from __future__ import annotations

import json
from pathlib import Path

from pss_bench.harness.config import RunOptions, load_method_config
from pss_bench.harness.stages import Stage, declared_stages, route_cfg_options
from pss_bench.io import sha256_file


class RunError(RuntimeError):
    """A run that cannot start or continue, with a message for the user."""


def plan_stages(opts: RunOptions) -> tuple[list[Stage], dict[str, dict]]:
    """The method's stages and the ``--cfg-options`` of each train stage (see ``harness/stages.py``).

    Raises:
        StageError: a bad declaration, or an option no stage can take.
    """
    declared = {k: v for k, v in opts.cfg_options.items() if k.split(".", 1)[0] == "stages"}
    method_cfg = load_method_config(opts.method, opts.backbone)
    if declared:
        method_cfg.merge_from_dict(declared)
    stages = declared_stages(method_cfg.get("stages"), opts.method)
    configs = {s.name: load_method_config(s.get("method") or opts.method, opts.backbone).to_dict()
               for s in stages if s.type == "train"}
    rest = {k: v for k, v in opts.cfg_options.items() if k not in declared}
    return stages, route_cfg_options(rest, stages, configs)


def stage_cfg_options(stage: Stage, routed: dict[str, dict]) -> dict:
    """A train stage's config options: its declaration's ``cfg_options``, then the user's."""
    return {**dict(stage.get("cfg_options") or {}), **routed.get(stage.name, {})}


RUN_STATE = "run.json"
"""What a work dir was started with (compared on --resume) and the time of each attempt."""


def run_identity(opts: RunOptions, users: list[int]) -> dict:
    """The settings a resumed run must share with the run it continues."""
    from pss_bench.methods import METHODS

    config = METHODS[opts.method].config(opts.backbone)
    return dict(method=opts.method, backbone=opts.backbone, preset=opts.preset, users=list(users),
                settings=opts.settings, seed=opts.seed, protocol=opts.protocol, groups=opts.groups,
                target_users=opts.target_users, select=opts.select, data_root=str(opts.data_root),
                pretrained=opts.pretrained, cfg_options={k: repr(v) for k, v in opts.cfg_options.items()},
                config_sha256=sha256_file(config) if config.is_file() else None)


def saved_anything(work: Path) -> bool:
    """Whether a run in ``work`` saved anything a resume could continue from: a checkpoint, a
    finished user (``done.json``) or the run's result."""
    if not work.is_dir():
        return False
    return any(True for _ in work.rglob("*.pth")) or any(True for _ in work.rglob("done.json")) \
        or (work / "result.json").exists()


def work_dir_problems(opts: RunOptions, work: Path, users: list[int]) -> list[str]:
    """Why ``work`` does not fit this invocation (empty: it does): a finished run without
    ``--resume``, an unfinished one without it, a ``--resume`` of a missing or different run. A
    run that stopped before it saved anything (a crash or Ctrl-C before the first checkpoint) is
    started again by the plain command, with any settings, and cannot be resumed."""
    state_path = work / RUN_STATE
    if not opts.resume:
        if (work / "result.json").exists():
            return [f"--work-dir {work}: already holds a finished run ({work / 'result.json'}); "
                    "choose another --work-dir or pass --resume"]
        if state_path.is_file() and saved_anything(work):
            return [f"--work-dir {work}: holds an unfinished run; pass --resume to continue it, or "
                    "choose another --work-dir"]
        return []
    if not work.is_dir():
        return [f"--resume: {work} does not exist; run without --resume to start it"]
    if not state_path.is_file():
        return [f"--resume: {work} holds no pss-bench run ({RUN_STATE} is missing)"]
    if not saved_anything(work):
        return [f"--resume: {work}: the run there stopped before it saved a checkpoint; run the same "
                "command without --resume to start it again"]
    try:
        state = json.loads(state_path.read_text())
        started = state["identity"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return [f"--resume: {state_path} is unreadable ({err}); choose another --work-dir"]
    diff = [f"{key}: {started.get(key)!r} in the work dir, {value!r} now"
            for key, value in run_identity(opts, users).items() if started.get(key) != value]
    if diff:
        return [f"--resume: {work} was started with other settings; a resumed run must match it "
                "(or choose another --work-dir):\n" + "\n".join(diff)]
    return []
