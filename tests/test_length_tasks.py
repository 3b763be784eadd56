"""Copying and counting builders (Barbero et al. 2024): correct answers, separators, length buckets as splits,
disjoint deterministic splits, honest capacity errors, and a card that rebuilds the same files."""

from __future__ import annotations

import itertools
import shlex
from pathlib import Path

import datasets
import pytest
import yaml

from data_builders import copying, counting, load_task_dataset
from data_builders.cli import rebuild_command
from data_builders.length_buckets import bucket_splits

SMALL = dict(train_size=300, validation_size=20, test_size=20, bucket_size=10)


@pytest.fixture(autouse=True)
def _quiet_private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("hf-cache")))
    datasets.disable_progress_bars()


def _rows_by_split(dataset):
    return {split: list(rows) for split, rows in dataset.items()}


def _assert_disjoint(dataset) -> None:
    questions = [q for rows in dataset.values() for q in rows["question"]]
    assert len(set(questions)) == len(questions)


def _assert_lengths(dataset, length_of, min_length: int, max_length: int) -> None:
    """Main splits stay in min..max; test_len<L> splits hold length L only."""
    buckets = bucket_splits(dataset)
    for split, rows in dataset.items():
        lengths = {length_of(row["question"]) for row in rows}
        if split in ("train", "validation", "test"):
            assert lengths <= set(range(min_length, max_length + 1)), split
        else:
            assert lengths == {int(split.removeprefix("test_len"))} and rows is buckets[min(lengths)]


def _groups_every(body: str, k: int) -> None:
    groups = body.split(",")
    assert all(len(group) == k for group in groups[:-1]) and 1 <= len(groups[-1]) <= k


# --- copying ------------------------------------------------------------------------------------------


def _copy_bits(question: str, position: str, hint: bool) -> str:
    assert question.startswith(f"{position}:")
    body = question.removeprefix(f"{position}:")
    if hint:
        assert body.endswith(copying.HINT)
        body = body.removesuffix(copying.HINT)
    return body


@pytest.mark.parametrize(
    ("position", "content", "hint", "every"), [("last", "interleaved", False, 0), ("first", "interleaved", True, 3)]
)
def test_copying_answers_the_copied_end(position, content, hint, every):
    data = copying.build(
        position=position,
        content=content,
        hint=hint,
        separator_every=every,
        min_length=2,
        max_length=20,
        test_lengths=(8, 40),
        seed=0,
        **SMALL,
    )
    assert list(data) == ["train", "validation", "test", "test_len8", "test_len40"]
    _assert_disjoint(data)
    _assert_lengths(data, lambda q: len(_copy_bits(q, position, hint).replace(",", "")), 2, 20)
    answers = []
    for row in itertools.chain(*data.values()):
        body = _copy_bits(row["question"], position, hint)
        if every:
            _groups_every(body, every)
        bits = body.replace(",", "")
        assert set(bits) <= {"0", "1"} and row["cot"] == ""
        assert row["answer"] == bits[0 if position == "first" else -1]
        answers.append(row["answer"])
    assert 0.4 < answers.count("0") / len(answers) < 0.6


def test_copying_all_ones_uses_each_question_once_and_says_when_they_run_out():
    """Lengths 1..8 hold 16 questions (1…1b for b = 0, 1); the test_len4 bucket takes both of length 4."""
    options = dict(content="ones", min_length=1, max_length=8, test_lengths=(4, 16), bucket_size=2, seed=0)
    data = copying.build(**options, train_size=10, validation_size=2, test_size=2)
    _assert_disjoint(data)
    assert sorted(data["test_len4"]["question"]) == ["last:1110", "last:1111"]
    main = [q for split in ("train", "validation", "test") for q in data[split]["question"]]
    assert len(main) == 14 and all(len(q) != len("last:1111") for q in main)
    assert all(set(q.removeprefix("last:")[:-1]) <= {"1"} for q in main)
    with pytest.raises(ValueError, match=r"exceeds the 14 distinct ones sequences.*--content interleaved.*10 train"):
        copying.build(**options, train_size=11, validation_size=2, test_size=2)
    with pytest.raises(
        ValueError,
        match=r"bucket_size=3 exceeds the 2 distinct ones sequences of length 4.*"
        r"--bucket-size 2 or less",
    ):
        copying.build(**{**options, "bucket_size": 3}, train_size=1, validation_size=1, test_size=1)


# --- counting -----------------------------------------------------------------------------------------


def _count_items(question: str, style: str, every: int) -> list[str]:
    prefix = counting.PREFIXES[style]
    assert question.startswith(prefix)
    body = question.removeprefix(prefix)
    if style == "sum":
        return body.split("+")
    if every and style == "digits":
        _groups_every(body, every)
    if style == "words":
        words = body.split(" ")
        groups = " ".join(words).split(", ")
        assert not every or all(len(g.split(" ")) == every for g in groups[:-1])
        return [word.rstrip(",") for word in words]
    return list(body.replace(",", ""))


@pytest.mark.parametrize(("style", "every"), [("digits", 0), ("digits", 3), ("sum", 0), ("words", 2)])
def test_counting_answers_how_many_items_are_counted(style, every):
    data = counting.build(style=style, separator_every=every, min_length=1, max_length=30, seed=0, **SMALL)
    _assert_disjoint(data)
    _assert_lengths(data, lambda q: len(_count_items(q, style, every)), 1, 30)
    counted = total = 0
    for row in itertools.chain(*data.values()):
        items = _count_items(row["question"], style, every)
        target = "car" if style == "words" else "1"
        others = set(counting.FILLERS) if style == "words" else {"0"}
        assert set(items) <= others | {target}
        assert row["answer"] == str(items.count(target))
        counted, total = counted + items.count(target), total + len(items)
    assert counted / total == pytest.approx(counting.DEFAULT_PROBABILITY, abs=0.03)


def test_counting_all_ones_is_one_question_per_length():
    data = counting.build(
        style="sum",
        probability=1,
        min_length=1,
        max_length=12,
        test_lengths=(3, 20),
        bucket_size=1,
        train_size=9,
        validation_size=1,
        test_size=1,
        seed=0,
    )
    assert data["test_len3"]["question"] == ["sum:1+1+1"] and data["test_len20"]["answer"] == ["20"]
    lengths = sorted(len(q.split("+")) for split in ("train", "validation", "test") for q in data[split]["question"])
    assert lengths == [1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    with pytest.raises(ValueError, match=r"exceeds the 11 distinct sum questions.*--probability below 1"):
        counting.build(
            style="sum",
            probability=1,
            max_length=12,
            test_lengths=(3,),
            bucket_size=1,
            train_size=10,
            validation_size=1,
            test_size=1,
            seed=0,
        )


def test_counting_errors_name_the_option():
    for options, message in [
        (dict(style="sum", separator_every=3), r"--separator-every or pass --style digits"),
        (dict(probability=0), r"probability=0.*--probability"),
        (dict(style="letters"), r"style='letters'.*--style"),
        (dict(separator_every=-1), r"separator_every=-1.*--separator-every"),
        (dict(min_length=0), r"min_length=0.*--min-length >= 1"),
        (dict(min_length=5, max_length=4), r"max_length=4.*--max-length >= 5"),
        (dict(test_lengths=(8, 8)), r"repeats a length.*--test-lengths"),
        (dict(test_lengths=(0,)), r"test_lengths=\(0,\).*--test-lengths"),
        (dict(bucket_size=0), r"bucket_size=0.*--bucket-size"),
        (dict(test_lengths=(4,), bucket_size=17), r"17 exceeds the 16 distinct digits.*--bucket-size 16"),
    ]:
        with pytest.raises(ValueError, match=message):
            counting.build(**{**SMALL, **options}, seed=0)


# --- CLI, schema, determinism ---------------------------------------------------------------------------


CLI = {
    "copying": (
        copying.main,
        [
            "--content",
            "ones",
            "--hint",
            "--separator-every",
            "3",
            "--max-length",
            "40",
            "--test-lengths",
            "8",
            "64",
            "--bucket-size",
            "2",
            "--train-size",
            "60",
            "--validation-size",
            "5",
            "--test-size",
            "5",
        ],
    ),
    "counting": (
        counting.main,
        [
            "--style",
            "words",
            "--test-lengths",
            "4",
            "16",
            "--bucket-size",
            "5",
            "--train-size",
            "200",
            "--validation-size",
            "10",
            "--test-size",
            "10",
        ],
    ),
}
CONFIGS = {"copying": "copy-last-ones-hint-sep3-len1-40", "counting": "count-words-p0.7-len1-64"}


def _parquet_bytes(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*.parquet"))}


@pytest.mark.parametrize("task", list(CLI))
def test_cli_writes_loadable_buckets_and_a_card_that_rebuilds_them(task, tmp_path):
    main, argv = CLI[task]
    for run, seed in (("first", "0"), ("second", "0"), ("other-seed", "1")):
        assert main([*argv, "--seed", seed, "--output-dir", str(tmp_path / run)]) == 0
    first = _parquet_bytes(tmp_path / "first")
    assert first == _parquet_bytes(tmp_path / "second") != _parquet_bytes(tmp_path / "other-seed")

    config = CONFIGS[task]
    for loaded in (
        load_task_dataset(tmp_path / "first", config),
        datasets.load_dataset(str(tmp_path / "first"), config),
    ):
        lengths = [int(n) for n in itertools.takewhile(str.isdigit, argv[argv.index("--test-lengths") + 1 :])]
        assert list(loaded) == ["train", "validation", "test", *(f"test_len{n}" for n in lengths)]
        assert list(bucket_splits(loaded)) == lengths
    module = {"copying": copying, "counting": counting}[task]
    assert _rows_by_split(load_task_dataset(tmp_path / "first", config)) == _rows_by_split(
        module.build(**_build_options(argv), seed=0)
    )
    readme = (tmp_path / "first" / "README.md").read_text(encoding="utf-8")
    build = yaml.safe_load(readme.split("---\n")[1])["seqvcr_builds"][config]
    assert build["cite"] == ["barbero2024transformers", "arefin2025seqvcr"] and "Transformers need glasses" in readme
    command = shlex.split(build["command"])
    assert command[:3] == ["python", "-m", f"data_builders.{task}"]
    out = command.index("--output-dir")
    main([*command[3:out], "--output-dir", str(tmp_path / "rebuilt")])
    assert _parquet_bytes(tmp_path / "rebuilt") == first


def _build_options(argv: list[str]) -> dict[str, object]:
    """The CLI flags of CLI[...] as build() keywords."""
    options: dict[str, object] = {}
    words = iter(argv)
    for flag in words:
        name = flag.removeprefix("--").replace("-", "_")
        if name == "hint":
            options[name] = True
        elif name in ("content", "style"):
            options[name] = next(words)
        elif name == "test_lengths":
            options[name] = tuple(int(n) for n in itertools.takewhile(str.isdigit, argv[argv.index(flag) + 1 :]))
            [next(words) for _ in options[name]]
        else:
            options[name] = int(next(words))
    return options


def test_cli_errors_exit_2_naming_the_flag_before_writing(tmp_path, capsys):
    for main, argv, message in [
        (copying.main, ["--content", "ones"], "--content interleaved"),
        (copying.main, ["--test-lengths", "8", "x"], "invalid int value: 'x'"),
        (counting.main, ["--style", "sum", "--separator-every", "2"], "--separator-every"),
        (counting.main, ["--probability", "1.5"], "--probability"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "--output-dir", str(tmp_path / "out")])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_rebuild_command_writes_booleans_and_tuples_as_their_flags_take_them():
    command = rebuild_command("m", {"hint": True, "other": False, "test_lengths": (8, 16), "empty": (), "n": 3})
    assert command == "python -m m --hint --no-other --test-lengths 8 16 --empty --n 3"


def test_bucket_splits_says_how_to_get_buckets():
    with pytest.raises(ValueError, match=r"no test_len<L> splits.*--test-lengths"):
        bucket_splits({"train": [], "test": []})
