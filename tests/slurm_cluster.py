"""A single-node Slurm cluster for tests: Debian's ``slurm-wlm`` and ``munge`` (``scripts/setup.sh``
installs them) run as ``munged``, ``slurmctld`` and ``slurmd`` on localhost, with their own folder
(state, spool, logs), munge key and socket, free ports and ``slurm.conf``; clients reach it through
``SLURM_CONF``. :meth:`Cluster.stop` ends the three processes it started, nothing else.

Process tracking by ``/proc`` (``proctrack/linuxproc``, ``task/none``): no cgroups, so it runs in a
container as root. No accounting (``AccountingStorageType=accounting_storage/none``, no slurmdbd
and database): ``sacct`` then answers "Slurm accounting storage is disabled", and
``scontrol show job`` keeps ended jobs for ``MinJobAge`` seconds. ``KillWait=2``: a cancelled or
requeued task gets SIGKILL 2 s after SIGTERM (default 30 s; submitit's job ignores SIGTERM).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

CLIENTS = ("sbatch", "srun", "squeue", "scontrol", "scancel", "sinfo")
DAEMONS = ("munged", "slurmctld", "slurmd")


def _exe(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    sbin = Path("/usr/sbin", name)
    return str(sbin) if sbin.is_file() else None


def why_not() -> str | None:
    """Why no cluster can start here (None: it can)."""
    absent = [n for n in CLIENTS + DAEMONS if _exe(n) is None]
    if absent:
        return f"Slurm not installed ({', '.join(absent)} missing; scripts/setup.sh installs slurm-wlm and munge)"
    if os.geteuid() != 0:
        return "slurmd runs jobs as their users and must start as root"
    return None


def _plugin_dir() -> str:
    """Where Debian puts Slurm's plugins (multiarch path)."""
    for d in sorted(Path("/usr/lib").glob("*/slurm-wlm")) + [Path("/usr/lib/slurm-wlm"), Path("/usr/lib/slurm")]:
        if (d / "select_cons_tres.so").is_file():
            return str(d)
    raise RuntimeError("no Slurm plugin folder (select_cons_tres.so) under /usr/lib")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """One node (this host, ``cpus`` CPUs, no GRES) in one default partition ``debug``."""

    def __init__(self, folder: Path, cpus: int = 2) -> None:
        self.folder = Path(folder)
        self.host = socket.gethostname().split(".")[0]
        self.procs: list[subprocess.Popen] = []
        for sub in ("state", "spool", "log", "munge"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        munge = self.folder / "munge"
        munge.chmod(0o700)
        self.key = munge / "munge.key"
        self.key.write_bytes(os.urandom(1024))
        self.key.chmod(0o400)
        self.socket = munge / "munge.socket"
        f = self.folder
        self.conf = f / "slurm.conf"
        self.conf.write_text("\n".join([
            "ClusterName=pssbench", f"SlurmctldHost={self.host}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
            "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={self.socket}",
            "SlurmUser=root", "SlurmdUser=root", f"PluginDir={_plugin_dir()}",
            f"StateSaveLocation={f / 'state'}", f"SlurmdSpoolDir={f / 'spool'}",
            f"SlurmctldPidFile={f / 'slurmctld.pid'}", f"SlurmdPidFile={f / 'slurmd.pid'}",
            f"SlurmctldLogFile={f / 'log' / 'slurmctld.log'}", f"SlurmdLogFile={f / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
            "SwitchType=switch/none", "SchedulerType=sched/backfill", "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core", "ReturnToService=2", "JobCompType=jobcomp/none",
            "AccountingStorageType=accounting_storage/none", "JobAcctGatherType=jobacct_gather/none",
            "MailProg=/bin/true", "MinJobAge=900", "KillWait=2", "MessageTimeout=20",
            f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN",
            f"PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP", ""]))
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self, timeout: float = 60) -> "Cluster":
        """Start munged, slurmctld and slurmd; return once the node is up (raises with the logs' folder)."""
        m = self.folder / "munge"
        self.procs.append(subprocess.Popen(
            [_exe("munged"), "--foreground", "--force", f"--socket={self.socket}", f"--key-file={self.key}",
             f"--pid-file={m / 'munged.pid'}", f"--log-file={m / 'munged.log'}", f"--seed-file={m / 'munged.seed'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            self._check(deadline, "munged did not create its socket")
        for daemon in ("slurmctld", "slurmd"):
            with open(self.folder / "log" / f"{daemon}.out", "wb") as out:
                self.procs.append(subprocess.Popen([_exe(daemon), "-D", "-f", str(self.conf)], env=self.env,
                                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        while self.run("sinfo", "-h", "-o", "%t", check=False).strip() not in ("idle", "mix", "alloc"):
            self._check(deadline, "the node did not come up")
        return self

    def _check(self, deadline: float, what: str) -> None:
        dead = [p.args[0] for p in self.procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"{what} ({', '.join(dead) or 'timeout'}); logs in {self.folder / 'log'}")
        time.sleep(0.2)

    def run(self, *argv: str, check: bool = True) -> str:
        """A Slurm client against this cluster; its stdout."""
        done = subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=60)
        if check and done.returncode:
            raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
        return done.stdout

    def wait_idle(self, timeout: float = 600) -> None:
        """Until no job of this cluster is pending or running."""
        deadline = time.monotonic() + timeout
        while self.run("squeue", "-h", check=False).strip():
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs still queued after {timeout} s:\n{self.run('squeue', check=False)}")
            time.sleep(1)

    def stop(self) -> None:
        """Cancel this cluster's jobs left by a failed test (their processes end through slurmd), then
        end the daemons started here (slurmd, slurmctld, munged), SIGKILL after 20 s."""
        if self.procs and all(p.poll() is None for p in self.procs):
            jobs = self.run("squeue", "-h", "-o", "%A", check=False).split()
            if jobs:
                self.run("scancel", *jobs, check=False)
                try:
                    self.wait_idle(30)
                except TimeoutError:
                    pass
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs = []
