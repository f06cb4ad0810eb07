"""``pss-bench data cluster`` never replaces a grouping without --force, and keeps the old one."""
from __future__ import annotations

import pytest

from pss_bench.cli import main
from pss_bench.data.layout import user_dir

pytestmark = pytest.mark.slow  # CLI runs


def test_cluster_refuses_to_overwrite_and_keeps_the_old_list(tmp_path, make_pss, capsys):
    root = make_pss(tmp_path / "pss", users=(1, 2), photos=6, annotated=2)
    released = [(user_dir(root, u) / "train_cluster80.txt").read_bytes() for u in (1, 2)]
    argv = ["data", "cluster", str(root), "--k", "80", "--features", "histogram"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "pss-bench data cluster: error:" in err and "train_cluster80.txt already exists" in err
    assert "--force" in err
    assert [(user_dir(root, u) / "train_cluster80.txt").read_bytes() for u in (1, 2)] == released
    assert main(argv + ["--force", "--users", "1"]) == 0
    assert (user_dir(root, 1) / "train_cluster80.txt.bak").read_bytes() == released[0]
    assert not (user_dir(root, 2) / "train_cluster80.txt.bak").exists()
    assert main(argv + ["--force", "--users", "1"]) == 0  # a second replacement keeps both old lists
    assert (user_dir(root, 1) / "train_cluster80.txt.bak").read_bytes() == released[0]
    assert (user_dir(root, 1) / "train_cluster80.txt.bak2").is_file()


def test_ctrl_c_in_synth_stops_with_one_message_and_no_worker_tracebacks(tmp_path):
    """Ctrl-C at a terminal sends SIGINT to the whole process group: the generator's workers must
    not each print a KeyboardInterrupt traceback."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "synth"
    proc = subprocess.Popen([sys.executable, "-m", "pss_bench.cli", "data", "synth", "--out", str(out),
                             "--users", "12", "--photos", "60", "80", "--voc-images", "400", "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            # a terminal's foreground job: SIGINT at its default even where this test
                            # runs as a background job, which inherits SIGINT ignored (Python then
                            # installs no KeyboardInterrupt handler)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "personal").glob("id*/JPEGImages/*")):
        time.sleep(0.1)  # the workers are writing users
    assert proc.poll() is None, "generation finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert len(err.strip().splitlines()) <= 2 and "holds an incomplete set" in err, err
    assert not (out / ".complete").exists()
