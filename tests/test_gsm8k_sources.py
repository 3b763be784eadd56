"""GSM8K without ../shared: the shipped original copy (bytes, license, wheel), the default build, the Hub source."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest
import yaml
from datasets import Dataset, DatasetDict

import data_builders
from data_builders import gsm8k, load_task_dataset

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = Path(data_builders.__file__).parent / "gsm8k_data"


def _shipped_records(split: str) -> list[dict]:
    lines = gzip.decompress((SHIPPED / f"{split}.jsonl.gz").read_bytes()).decode("utf-8").split("\n")
    return [json.loads(line) for line in lines if line]


def _card_build(output_dir: Path, config_name: str) -> dict:
    meta = yaml.safe_load((output_dir / "README.md").read_text(encoding="utf-8").split("---\n")[1])
    return meta["seqvcr_builds"][config_name]


def test_shipped_copy_is_the_original_release_with_its_mit_notice():
    """Decompressed, the files are openai/grade-school-math's bytes, as PROVENANCE.md's sha256 lines say."""
    provenance = (SHIPPED / "PROVENANCE.md").read_text(encoding="utf-8")
    listed = {name: digest for digest, name in re.findall(r"([0-9a-f]{64})  (\S+)", provenance)}
    assert listed == {
        "train.jsonl": "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465",
        "test.jsonl": "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
    }
    for name, digest in listed.items():
        assert hashlib.sha256(gzip.decompress((SHIPPED / f"{name}.gz").read_bytes())).hexdigest() == digest
    assert "3101c7d5072418e28b9008a6636bde82a006892c" in provenance
    license_text = (SHIPPED / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License\n\nCopyright (c) 2021 OpenAI\n")
    assert "above copyright notice and this permission notice shall be included" in license_text
    assert sorted(path.name for path in SHIPPED.iterdir()) == [
        "LICENSE",
        "PROVENANCE.md",
        "test.jsonl.gz",
        "train.jsonl.gz",
    ]


def test_no_builder_reads_the_development_shared_folder():
    """../shared exists only beside our development checkouts; no builder may depend on it."""
    for path in (ROOT / "data_builders").glob("*.py"):
        assert "../shared" not in path.read_text(encoding="utf-8"), path


def test_default_build_reads_the_shipped_original(tmp_path, capsys):
    out = tmp_path / "out"
    assert gsm8k.main(["--output-dir", str(out)]) == 0
    assert "wrote config 'gsm8k' (train 6,973, validation 500, test 1,319)" in capsys.readouterr().out
    build = _card_build(out, "gsm8k")
    assert build["command"] == (
        f"python -m data_builders.gsm8k --variant original --validation-size 500 --seed 0 --config-name gsm8k "
        f"--output-dir {shlex.quote(str(out))}"
    )
    assert build["license"] == "mit" and build["cite"] == ["cobbe2021gsm8k", "arefin2025seqvcr"]
    dataset = load_task_dataset(out)
    assert dataset["test"]["question"] == [record["question"] for record in _shipped_records("test")]
    assert dataset["test"][0]["answer"] == "18" and "<<16-3-4=9>>" in dataset["test"][0]["cot"]


def test_original_files_in_an_input_dir_build_what_the_shipped_copy_builds(shared_dir):
    shipped = gsm8k.build(validation_size=50, seed=3)
    given = gsm8k.build(variant="original", input_dir=shared_dir / "data/gsm8k", validation_size=50, seed=3)
    assert {split: rows.to_list() for split, rows in shipped.items()} == {
        split: rows.to_list() for split, rows in given.items()
    }


def test_wheel_ships_the_copy_and_the_builder_runs_from_it_alone(tmp_path):
    """Build the wheel from a copy of the sources, then run the GSM8K builder from the unpacked wheel only,
    in a folder with no ../shared: what a `pip install` or a bare clone has."""
    source = _mkdir(tmp_path / "src")
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("hf_seqvcr", "data_builders"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_wheel({str(tmp_path)!r})"],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("*.whl")
    installed = tmp_path / "installed"
    with zipfile.ZipFile(wheel) as archive:
        for name in ("train.jsonl.gz", "test.jsonl.gz", "LICENSE", "PROVENANCE.md"):
            assert archive.read(f"data_builders/gsm8k_data/{name}") == (SHIPPED / name).read_bytes()
        archive.extractall(installed)

    work = _mkdir(tmp_path / "bare" / "checkout")
    code = (
        "import sys, data_builders.gsm8k as gsm8k; print(gsm8k.__file__); "
        "sys.exit(gsm8k.main(['--validation-size', '20', '--output-dir', 'out']))"
    )
    env = dict(os.environ, PYTHONPATH=str(installed), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(installed / "data_builders" / "gsm8k.py"))
    assert "wrote config 'gsm8k' (train 7,453, validation 20, test 1,319)" in result.stdout


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def test_hub_source_reads_the_main_config_of_an_openai_gsm8k_shaped_repo(hub, tmp_path, capsys):
    """A small repo laid out like openai/gsm8k (configs main and socratic, splits train/test, columns
    question/answer) builds the same rows as the same records given as files."""
    from hub_server import USER

    records = {"train": _shipped_records("train")[:40], "test": _shipped_records("test")[:10]}
    repo_id = f"{USER}/gsm8k-{uuid.uuid4().hex[:8]}"
    DatasetDict({split: Dataset.from_list(rows) for split, rows in records.items()}).push_to_hub(repo_id, "main")
    socratic = {split: [dict(row, answer=f"Q: why?\n{row['answer']}") for row in records[split]] for split in records}
    DatasetDict({split: Dataset.from_list(rows) for split, rows in socratic.items()}).push_to_hub(repo_id, "socratic")
    files = _mkdir(tmp_path / "files")
    for split, rows in records.items():
        (files / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")

    from_hub = gsm8k.build(hub_id=repo_id, validation_size=5, seed=1)
    from_files = gsm8k.build(input_dir=files, validation_size=5, seed=1)
    assert {split: rows.to_list() for split, rows in from_hub.items()} == {
        split: rows.to_list() for split, rows in from_files.items()
    }
    assert {split: len(rows) for split, rows in from_hub.items()} == {"train": 35, "validation": 5, "test": 10}

    out = tmp_path / "out"
    assert gsm8k.main(["--hub-id", repo_id, "--validation-size", "5", "--seed", "1", "--output-dir", str(out)]) == 0
    build = _card_build(out, "gsm8k")
    assert build["command"].startswith(f"python -m data_builders.gsm8k --variant original --hub-id {repo_id} ")
    assert build["parameters"] == {"variant": "original", "hub_id": repo_id, "validation_size": 5}
    assert f"read from the Hub dataset `{repo_id}` (config `main`)" in (out / "README.md").read_text(encoding="utf-8")
    assert load_task_dataset(out)["train"].to_list() == from_hub["train"].to_list()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--variant", "aug"], "--variant aug reads Deng et al.'s files, which have no license"),
        (["--variant", "aug", "--input-dir", ".", "--hub-id", "a/b"], "drop --hub-id"),
        (["--input-dir", ".", "--hub-id", "openai/gsm8k"], "--input-dir and --hub-id name two sources; drop one"),
        (["--hub-id", "not a repo"], "pass e.g. --hub-id openai/gsm8k"),
        (["--variant", "socratic"], "argument --variant: invalid choice: 'socratic'"),
    ],
)
def test_source_errors_name_the_flag_before_any_work(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        gsm8k.main([*argv, "--output-dir", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
