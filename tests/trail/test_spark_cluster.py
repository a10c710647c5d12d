"""`trail analyze --engine spark --spark-master spark://...` on a real standalone Spark cluster on loopback.

The cluster is one master and one worker, started with the launcher that ships in the pyspark distribution
(``bin/spark-class``; the pip package has no ``sbin/start-master.sh``), each in its own process group so the
fixture can stop it whole. kmsguard runs as a subprocess, as a user runs it: its driver JVM is its own child, and
the findings are held equal to DuckDB's on the same logs. Killing kmsguard (SIGKILL, SIGTERM) must take the
driver JVM with it and make the worker stop the run's executor.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kmsguard.trail.analyze import TrailOptions, analyze

from . import scenario as sc

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, ready: Callable[[], bool], timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, parent in parents.items() if parent == p]
        out += kids
        todo += kids
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _executors() -> list[int]:
    """Executor JVMs on this machine (a standalone worker starts each as CoarseGrainedExecutorBackend)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if b"CoarseGrainedExecutorBackend" in (d / "cmdline").read_bytes() and _alive(int(d.name)):
                    found.append(int(d.name))
            except OSError:
                continue
    return found


@dataclass
class Cluster:
    url: str
    master_log: Path
    worker_log: Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    import pyspark

    home = Path(pyspark.__file__).parent
    spark_class = home / "bin" / "spark-class"
    base = tmp_path_factory.mktemp("spark-cluster")
    port = _free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOG_DIR": str(base),
        "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
        "SPARK_WORKER_OPTS": "-Dspark.worker.cleanup.enabled=false",
    }
    url = f"spark://127.0.0.1:{port}"
    logs = Cluster(url, base / "master.log", base / "worker.log")
    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], log: Path) -> None:
        with log.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [str(spark_class), *args], stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
            )

    try:
        master = ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port)]
        start([*master, "--webui-port", str(_free_port())], logs.master_log)
        _wait("the Spark master", lambda: "ALIVE" in logs.master_log.read_text(errors="replace"))
        worker = ["org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores", "2"]
        worker += ["--memory", "2g", "--work-dir", str(base / "work"), "--webui-port", str(_free_port())]
        start(worker, logs.worker_log)
        _wait("the worker to register", lambda: "Registering worker" in logs.master_log.read_text(errors="replace"))
        yield logs
    finally:
        for p in procs:  # the whole group: spark-class's shell and its JVM
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _kmsguard(args: list[str], tmp: Path) -> subprocess.Popen[bytes]:
    """kmsguard as a user runs it; its stderr (Spark's log included) to ``tmp/stderr``, never a full pipe."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "xdg"), "SPARK_LOCAL_IP": "127.0.0.1"}
    with (tmp / "stderr").open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "kmsguard.cli.main", "trail", "analyze", *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )


def _key(f: dict) -> tuple[str, str, str, str]:
    return (f["check_id"], f["resource_arn"], f["message"], json.dumps(f["evidence"], sort_keys=True, default=str))


def test_a_run_on_a_standalone_cluster_finds_what_duckdb_finds(cluster: Cluster, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    sc.write_logs(logs)
    out = tmp_path / "spark.json"
    args = [str(logs), "--engine", "spark", "--spark-master", cluster.url, "--cache", str(tmp_path / "cache")]
    proc = _kmsguard([*args, "-f", "json", "-o", str(out), "-q", "--fail-on", "never"], tmp_path)
    proc.wait(timeout=540)
    err = (tmp_path / "stderr").read_text(errors="replace")
    assert proc.returncode == 0, err[-3000:]
    duck = analyze([str(logs)], None, TrailOptions(cache_dir=tmp_path / "d", workers=1))
    got = json.loads(out.read_text())
    assert got["findings"], "the scenario has findings: an empty report would prove nothing"
    want = json.loads(json.dumps([f.model_dump(mode="json") for f in duck.findings]))
    assert sorted(map(_key, got["findings"])) == sorted(map(_key, want))
    assert "with spark" in err
    # It ran on the cluster: the master registered the application and the worker ran an executor for it.
    master_log = cluster.master_log.read_text(errors="replace")
    assert "Registering app kmsguard-trail" in master_log
    assert "Launching executor" in master_log or "Launch executor" in cluster.worker_log.read_text(errors="replace")
    _wait("the application's executor to end", lambda: not _executors(), timeout=60)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_run_leaves_no_jvm_and_no_executor(cluster: Cluster, tmp_path: Path, sig: signal.Signals) -> None:
    logs = tmp_path / "logs"
    sc.write_logs(logs)
    args = [str(logs), "--engine", "spark", "--spark-master", cluster.url, "--cache", str(tmp_path / "cache")]
    proc = _kmsguard([*args, "-f", "json", "-o", str(tmp_path / "out.json"), "-q"], tmp_path)
    try:
        # Killed mid-run: once its executor is up (the detections are running on the cluster).
        _wait("an executor for the run", lambda: bool(_executors()) or proc.poll() is not None, timeout=240)
        assert proc.poll() is None, "the run ended before it could be killed"
        jvms = _children(proc.pid)
        assert jvms, "the driver JVM is a child of kmsguard"
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    _wait("the driver JVM to exit", lambda: not any(_alive(p) for p in jvms), timeout=60)
    _wait("the worker to stop the run's executor", lambda: not _executors(), timeout=90)
