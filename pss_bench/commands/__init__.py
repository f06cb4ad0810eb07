"""Subcommands of the ``pss-bench`` CLI, one module each (see ``pss_bench.cli``)."""
