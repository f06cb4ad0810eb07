"""``pss-bench sweep``: the whole table as independent (method, backbone, user, seed) units, run by
submitit (its local executor on a workstation, one Slurm array job per wave on a cluster),
resumable, with per-unit state, per-(method, backbone, seed) record assembly and the leaderboard.

Modules: ``plan`` (the units, shared stages, the estimate, the sweep manifest), ``state`` (what each
unit's folder says: pending, running, failed, done; ``sweep status``), ``job`` (the submitit
callable that runs one unit through :func:`pss_bench.harness.run.run`, checkpointable for requeue),
``execute`` (the local scheduler, the Slurm submission, ``--dry-run``), ``slurm`` (what the cluster
says: its GRES, the array tasks' states, without accounting), ``assemble`` (records and
leaderboard).

May import the harness (only inside functions: ``plan``, ``state`` and ``assemble`` load neither
torch nor MMSegmentation, so ``sweep status`` and ``--dry-run`` start fast), records, leaderboard
and submitit. Nothing but the CLI (and benchmarks) imports it.
"""
