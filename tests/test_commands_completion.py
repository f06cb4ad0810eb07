"""``pss-bench completion``: the generated bash script completes subcommands, options and choices."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from pss_bench.cli import main

pytestmark = pytest.mark.slow  # runs bash


def _complete(script: str, words: list[str]) -> list[str]:
    line = " ".join(words)
    program = (f"{script}\nCOMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; "
               f"COMP_LINE={line!r}; _pss_bench; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    out = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True).stdout
    return sorted(out.split())


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion(capsys):
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert "complete " in script and "pss-bench" in script
    assert {"run", "predict", "score", "data", "completion"} <= set(_complete(script, ["pss-bench", ""]))
    assert _complete(script, ["pss-bench", "run", "--met"]) == ["--method"]
    assert "advent" in _complete(script, ["pss-bench", "run", "--method", ""])
    assert _complete(script, ["pss-bench", "data", "ch"]) == ["check"]
    assert "--force" in _complete(script, ["pss-bench", "data", "cluster", "--f"])
    assert _complete(script, ["pss-bench", "completion", "z"]) == ["zsh"]
    assert main(["completion", "zsh"]) == 0 and "bashcompinit" in capsys.readouterr().out
