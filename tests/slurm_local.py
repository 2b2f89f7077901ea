"""A real SLURM on localhost for the `cluster` tests: munged, slurmctld and one slurmd, started as root with
a configuration of their own in a temporary folder (ports 16817/16818, so a SLURM the machine may already run
is left alone), and stopped afterwards. Where that cannot be (not root, SLURM or munge not installed: `make
test-cluster` installs them from Debian) the tests are skipped, saying why."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

DAEMONS = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "munge", "unmunge"]

CONF = """ClusterName=hbench
SlurmctldHost={host}
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName={host} CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def why_not() -> str | None:
    """Why SLURM cannot run here, or None."""
    if os.geteuid() != 0:
        return "the local SLURM is started as root, and this is not root"
    missing = [d for d in DAEMONS if not (shutil.which(d) or Path(f"/usr/sbin/{d}").exists())]
    if missing:
        return f"SLURM/munge not installed ({', '.join(missing)} missing): `make test-cluster` installs them"
    return None


def _munge_works() -> bool:
    cred = subprocess.run(["munge", "-n"], capture_output=True)
    return cred.returncode == 0 and subprocess.run(["unmunge"], input=cred.stdout, capture_output=True).returncode == 0


def _start_munged() -> subprocess.Popen | None:
    """munged as the munge user, unless one already answers (then it is not ours to stop)."""
    if _munge_works():
        return None
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    proc = subprocess.Popen(["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--foreground"])
    for _ in range(50):
        if _munge_works():
            return proc
        time.sleep(0.1)
    proc.kill()
    pytest.fail("munged did not start")


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 // 2
    return 2000


def _idle(env: dict[str, str]) -> bool:
    out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=env)
    return out.returncode == 0 and out.stdout.strip() in ("idle", "mix", "alloc")


def start(folder: Path):
    """Start the daemons; yield the environment that points SLURM's commands at them; stop them."""
    reason = why_not()
    if reason:
        pytest.skip(reason)
    for sub in ("state", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(CONF.format(host=host, dir=folder, cpus=os.cpu_count() or 1, memory=_memory_mb()))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    procs = []
    munged = _start_munged()
    try:
        procs.append(subprocess.Popen(["slurmctld", "-D", "-i", "-f", str(conf)], env=env))
        time.sleep(1)
        procs.append(subprocess.Popen(["slurmd", "-D", "-f", str(conf)], env=env))
        deadline = time.time() + 60
        while time.time() < deadline and not _idle(env):
            time.sleep(0.5)
        if not _idle(env):
            logs = "".join(p.read_text()[-1500:] for p in folder.glob("*.log"))
            pytest.fail(f"the local SLURM did not come up:\n{logs}")
        yield env
    finally:
        subprocess.run(["scancel", "--full", "-u", "root"], env=env, capture_output=True)
        for proc in reversed(procs + ([munged] if munged else [])):
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
