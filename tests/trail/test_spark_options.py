"""Where --engine spark runs: --spark-master / --spark-conf over kmsguard.yaml's trail.spark; bad values are
usage errors naming them, before any Spark starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kmsguard.cli.main import app
from kmsguard.cli.trail import _spark_options
from kmsguard.config_file import ConfigFileError, load_config
from kmsguard.trail.engines.spark_engine import local_conf


def _analyze(tmp_path: Path, *args: str) -> tuple[int, str]:
    (tmp_path / "logs").mkdir(exist_ok=True)
    res = CliRunner().invoke(app, ["trail", "analyze", str(tmp_path / "logs"), "--engine", "spark", *args])
    return res.exit_code, res.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--spark-master", "spark//nohost"], "'spark//nohost' is not a Spark master"),
        (["--spark-master", "local[two]"], "'local[two]' is not a Spark master"),
        (["--spark-conf", "executor.memory=4g"], "'executor.memory' is not a Spark setting"),
        (["--spark-conf", "spark.executor.memory"], "'spark.executor.memory' is not NAME=VALUE"),
    ],
)
def test_a_bad_master_or_setting_is_a_usage_error(tmp_path: Path, args: list[str], named: str) -> None:
    code, out = _analyze(tmp_path, *args)
    assert code == 2 and named in out, out


def test_the_yaml_gives_master_and_settings_and_the_flags_win(tmp_path: Path) -> None:
    path = tmp_path / "kmsguard.yaml"
    path.write_text(
        "trail:\n  spark:\n    master: spark://10.0.0.5:7077,10.0.0.6:7077\n"
        "    conf:\n      spark.executor.memory: 4g\n      spark.sql.shuffle.partitions: 64\n"
        "      spark.dynamicAllocation.enabled: true\n"
    )
    cfg = load_config(path)
    opts = _spark_options(cfg, None, None)
    assert opts["master"] == "spark://10.0.0.5:7077,10.0.0.6:7077"
    # YAML's numbers and booleans become the text Spark takes.
    assert opts["conf"] == {
        "spark.executor.memory": "4g",
        "spark.sql.shuffle.partitions": "64",
        "spark.dynamicAllocation.enabled": "true",
    }
    flags = _spark_options(cfg, "local[2]", ["spark.executor.memory=8g", "spark.eventLog.enabled=true"])
    assert flags["master"] == "local[2]"
    assert flags["conf"]["spark.executor.memory"] == "8g" and flags["conf"]["spark.eventLog.enabled"] == "true"
    assert flags["conf"]["spark.sql.shuffle.partitions"] == "64"


def test_a_yaml_setting_that_is_not_spark_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "kmsguard.yaml"
    path.write_text("trail:\n  spark:\n    conf:\n      executor.memory: 4g\n")
    with pytest.raises(ConfigFileError) as e:
        load_config(path)
    assert "'executor.memory' is not a Spark setting" in str(e.value) and "line" in str(e.value)


def test_the_default_is_local_mode(tmp_path: Path) -> None:
    opts = _spark_options(load_config(None), None, None)
    assert opts == {"master": "local[*]", "conf": {}}


@pytest.mark.parametrize(
    ("master", "partitions"),
    [("local", "1"), ("local[3]", "3"), ("local[2,4]", "2"), ("local[*]", str(os.cpu_count() or 1))],
)
def test_local_mode_gets_a_shuffle_partition_per_thread(master: str, partitions: str) -> None:
    conf = local_conf(master)
    assert conf["spark.sql.shuffle.partitions"] == partitions
    assert "-XX:ReservedCodeCacheSize=" in conf["spark.driver.extraJavaOptions"]


@pytest.mark.parametrize("master", ["spark://10.0.0.5:7077", "yarn", "k8s://https://k8s.internal:6443"])
def test_a_cluster_keeps_its_own_defaults(master: str) -> None:
    assert local_conf(master) == {}
