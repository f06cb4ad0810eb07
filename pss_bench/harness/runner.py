"""A Runner whose console shows progress, not MMEngine's start-up dumps (they stay in the log file)."""
from __future__ import annotations

import logging
import warnings

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

# Start-up messages that fill several screens; the full text is still written to WORK/.../*.log.
_CONSOLE_HIDDEN = ("\n---", "Config:", "Hooks will be executed", "Image shapes are different",
                   "\"FileClient\" will be deprecated", "\"HardDiskBackend\" is the alias",
                   "Distributed training is not used")


class _ConsoleFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).lstrip(" ").startswith(_CONSOLE_HIDDEN)


@RUNNERS.register_module()
class HarnessRunner(Runner):
    """MMEngine ``Runner`` for ``pss-bench run``: identical training, quieter console."""

    def build_logger(self, *args, **kwargs):
        logger = super().build_logger(*args, **kwargs)
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler and not any(
                    isinstance(f, _ConsoleFilter) for f in handler.filters):
                handler.addFilter(_ConsoleFilter())
        return logger


def silence_known_warnings() -> None:
    """Warnings that repeat on every new input size and say nothing about the run."""
    # mmseg's resize(): align_corners=True (as the released code) with sizes that are not x+1 / nx+1.
    warnings.filterwarnings("ignore", message="When align_corners=True", category=UserWarning)
    warnings.filterwarnings("ignore", message="``build_loss`` would be deprecated", category=UserWarning)
    warnings.filterwarnings("ignore", message=".*get_instance.*should not accept", category=UserWarning)
