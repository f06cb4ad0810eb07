"""A single-node Slurm cluster for the tests: Debian's ``slurm-wlm`` and ``munge`` (installed by
``scripts/setup.sh``), with its own folder, munge key and socket, ports and ``slurm.conf``, started
and stopped by the fixture (it ends the processes it started, nothing else).

No accounting (``AccountingStorageType=accounting_storage/none``): ``sacct`` answers "Slurm
accounting storage is disabled"; submitit and ``pss-bench sweep status`` read ``squeue`` and the
units' own state files instead (``tests/test_sweep_slurm.py`` checks that path).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
PLUGIN_DIRS = ("/usr/lib/x86_64-linux-gnu/slurm-wlm", "/usr/lib/aarch64-linux-gnu/slurm-wlm", "/usr/lib/slurm-wlm")


def missing() -> str | None:
    """Why no cluster can start here (None: it can)."""
    absent = [d for d in (*DAEMONS, "sbatch", "squeue", "scontrol", "scancel", "sinfo")
              if shutil.which(d) is None and not Path("/usr/sbin", d).is_file()]
    if absent:
        return f"{', '.join(absent)} not installed (scripts/setup.sh installs slurm-wlm and munge)"
    if os.geteuid() != 0:
        return "the single-node cluster runs slurmd as root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _exe(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class Cluster:
    """``env`` holds ``SLURM_CONF`` for the clients (sbatch, squeue, ..., submitit)."""

    def __init__(self, folder: Path, cpus: int = 2) -> None:
        self.folder = folder
        self.host = socket.gethostname().split(".")[0]
        self.procs: list[subprocess.Popen] = []
        for sub in ("state", "spool", "munge", "log"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(folder / "munge", 0o700)
        key = folder / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        self.socket = folder / "munge" / "munge.socket"
        plugins = next((d for d in PLUGIN_DIRS if Path(d).is_dir()), PLUGIN_DIRS[0])
        self.conf = folder / "slurm.conf"
        self.conf.write_text("\n".join([
            "ClusterName=pssbench", f"SlurmctldHost={self.host}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
            "AuthType=auth/munge", f"AuthInfo=socket={self.socket}", "CredType=cred/munge",
            f"StateSaveLocation={folder / 'state'}", f"SlurmdSpoolDir={folder / 'spool'}",
            f"SlurmctldPidFile={folder / 'slurmctld.pid'}", f"SlurmdPidFile={folder / 'slurmd.pid'}",
            f"SlurmctldLogFile={folder / 'log' / 'slurmctld.log'}", f"SlurmdLogFile={folder / 'log' / 'slurmd.log'}",
            "SlurmUser=root", "SlurmdUser=root", "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "SwitchType=switch/none", "MpiDefault=none", "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core", "ReturnToService=2",
            "JobCompType=jobcomp/none", "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none", "MailProg=/bin/true", f"PluginDir={plugins}",
            "MinJobAge=600", "SchedulerParameters=sched_interval=1", "MessageTimeout=20",
            f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=8000 State=UNKNOWN",
            f"PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP", ""]))
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self, timeout: float = 60) -> "Cluster":
        m = self.folder / "munge"
        self.procs.append(subprocess.Popen(
            [_exe("munged"), "--foreground", "--force", f"--socket={self.socket}", f"--key-file={m / 'munge.key'}",
             f"--pid-file={m / 'munged.pid'}", f"--log-file={m / 'munged.log'}", f"--seed-file={m / 'munged.seed'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("munged did not start")
            time.sleep(0.1)
        for daemon in ("slurmctld", "slurmd"):
            log = open(self.folder / "log" / f"{daemon}.out", "wb")
            self.procs.append(subprocess.Popen([_exe(daemon), "-D", "-f", str(self.conf)], env=self.env,
                                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        while True:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=self.env, capture_output=True, text=True).stdout
            if out.strip() in ("idle", "mix", "alloc"):
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"the node did not come up (sinfo: {out.strip()!r}); see {self.folder / 'log'}")
            time.sleep(0.5)

    def run(self, *argv: str, check: bool = True) -> str:
        done = subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=60)
        if check and done.returncode:
            raise RuntimeError(f"{' '.join(argv)}: {done.stderr}")
        return done.stdout

    def wait_idle(self, timeout: float = 600) -> None:
        """Until no job is pending or running."""
        deadline = time.monotonic() + timeout
        while self.run("squeue", "-h").strip():
            if time.monotonic() > deadline:
                raise TimeoutError(self.run("squeue"))
            time.sleep(1)

    def stop(self) -> None:
        for proc in reversed(self.procs):  # slurmd, slurmctld, munged: the processes started here
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
