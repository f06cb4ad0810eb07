"""The harness behind ``pss-bench run``: presets, config assembly with explicit overrides, the stages
of multi-stage methods, per-user adaptation, prediction, scoring and the result record (``run.py``),
resume and distributed training, the pre-flight (``preflight.py``; it builds nothing) and the plan
it shares with the run (``plan.py``), and the stand-in trainer (``standin.py``). May import
everything below it (data, datasets, models, inference, scoring, records); nothing but the CLI
imports it.

This package's ``__init__`` is empty so that ``presets`` stays importable without torch (the CLI's
``--help``). Its MMEngine components (``HarnessRunner``, ``RNGStateHook``, ``GradSyncOptimWrapper``,
``UDADistributedWrapper``, the ``pss-harness://`` checkpoint scheme) are registered by
:mod:`pss_bench.plugins`.
"""
