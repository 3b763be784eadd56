"""data_builders: byte-exact Deng format, correct CoTs, disjoint deterministic splits, Hub-style directories, errors."""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import types
import uuid
from pathlib import Path

import datasets
import pytest
import yaml
from datasets import Dataset, DatasetDict

from data_builders import arithmetic, cli, gsm8k, lis, load_task_dataset, multiplication, to_line, write_dataset_dir
from data_builders.card import dataset_card
from data_builders.card_merge import merge_cards
from data_builders.distinct import draw_distinct
from data_builders.splits import SplitSizes, make_split, split_in_order
from hf_seqvcr.citations import bibtex

DENG_MULT = [
    "4_by_4_mult/valid.txt",
    "4_by_4_mult/test_bigbench.txt",
    "5_by_5_mult/valid.txt",
    "5_by_5_mult/test_bigbench.txt",
]


@pytest.fixture(autouse=True)
def _quiet_private_cache(tmp_path_factory, monkeypatch):
    """load_dataset caches in a throwaway dir, and no progress bars clutter failures."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("hf-cache")))
    datasets.disable_progress_bars()


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line]


def _questions(dataset: DatasetDict) -> dict[str, list[str]]:
    return {split: list(rows["question"]) for split, rows in dataset.items()}


def _assert_disjoint(dataset: DatasetDict) -> None:
    questions = _questions(dataset)
    everything = [q for split in questions.values() for q in split]
    assert len(set(everything)) == len(everything)


def _product_of(row: dict[str, str]) -> tuple[int, int, int]:
    a, b = multiplication.parse_operands(row["question"])
    return a, b, int("".join(reversed(row["answer"].split())))


# --- multiplication -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DENG_MULT)
def test_multiplication_equals_every_deng_line(shared_dir, name):
    lines = _lines(shared_dir / "data/implicit_cot" / name)
    digits = int(name[0])
    rows = multiplication.examples([multiplication.parse_operands(line) for line in lines], digits)
    assert [to_line(row) for row in rows] == lines


@pytest.mark.parametrize("digits", [1, 2, 3, 7, 12])
def test_multiplication_rows_are_correct_products_for_any_k(digits):
    dataset = multiplication.build(digits=digits, train_size=60, validation_size=5, test_size=5, seed=1)
    _assert_disjoint(dataset)
    for row in itertools.chain(*dataset.values()):
        a, b, product = _product_of(row)
        assert a * b == product and len(str(a)) == len(str(b)) == digits
        assert len(row["answer"].split()) == 2 * digits
        assert row["cot"].count("+") == digits - 1 and row["cot"].count("(") == max(digits - 2, 0)


def test_multiplication_can_use_the_whole_pair_space():
    dataset = multiplication.build(digits=1, train_size=79, validation_size=1, test_size=1, seed=0)
    pairs = {multiplication.parse_operands(q) for split in _questions(dataset).values() for q in split}
    assert pairs == set(itertools.product(range(1, 10), repeat=2))


def test_multiplication_heldout_pairs_become_the_eval_splits_and_stay_out_of_train():
    every = list(itertools.product(range(10, 100), repeat=2))
    heldout = {"validation": every[::90], "test": every[1::90]}
    dataset = multiplication.build(digits=2, train_size=len(every) - 180, seed=0, heldout=heldout)
    assert [multiplication.parse_operands(q) for q in dataset["validation"]["question"]] == heldout["validation"]
    train = {multiplication.parse_operands(q) for q in dataset["train"]["question"]}
    assert train == set(every) - set(heldout["validation"]) - set(heldout["test"])


def test_multiplication_heldout_dir_reproduces_deng_eval_sets(shared_dir, tmp_path):
    folder = shared_dir / "data/implicit_cot/4_by_4_mult"
    multiplication.main(
        ["--digits", "4", "--train-size", "3000", "--heldout-dir", str(folder), "--output-dir", str(tmp_path)]
    )
    dataset = load_task_dataset(str(tmp_path))
    assert [to_line(row) for row in dataset["test"]] == _lines(folder / "test_bigbench.txt")
    assert [to_line(row) for row in dataset["validation"]] == _lines(folder / "valid.txt")
    held = set(dataset["test"]["question"]) | set(dataset["validation"]["question"])
    assert not held & set(dataset["train"]["question"])


def test_multiplication_errors_name_the_option_before_any_work(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"train_size.*81 distinct 1-digit operand pairs.*--train-size"):
        multiplication.build(digits=1, train_size=80, validation_size=1, test_size=1, seed=0)
    with pytest.raises(ValueError, match=r"digits=0.*--digits"):
        multiplication.build(digits=0, train_size=1, seed=0)
    with pytest.raises(ValueError, match="--validation-size"):
        multiplication.build(digits=2, train_size=1, validation_size=3, seed=0, heldout={"validation": [(10, 10)]})
    for argv, message in [
        (["--digits", "0"], "--digits"),
        (["--digits", "5", "--train-size", str(10**12)], "--train-size"),
        (["--test-size", "0"], "--test-size"),
        (["--heldout-dir", str(tmp_path / "none")], "--heldout-dir"),
        (["--private"], "--push-to-hub"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            multiplication.main([*argv, "--output-dir", str(tmp_path / "out")])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- arithmetic expressions ---------------------------------------------------------------------------


def _evaluate(tokens: list[str], modulus: int) -> int:
    """Independent recursive-descent evaluator: precedence, left associativity, division by inverse."""
    position = 0

    def atom() -> int:
        nonlocal position
        token = tokens[position]
        position += 1
        if token == "(":
            value = expression()
            assert tokens[position] == ")"
            position += 1
            return value
        return int(token)

    def term() -> int:
        nonlocal position
        value = atom()
        while position < len(tokens) and tokens[position] in "*/":
            operator = tokens[position]
            position += 1
            right = atom()
            assert right % modulus or operator == "*", "division by zero"
            value = value * (right if operator == "*" else pow(right, -1, modulus)) % modulus
        return value

    def expression() -> int:
        nonlocal position
        value = term()
        while position < len(tokens) and tokens[position] in "+-":
            operator = tokens[position]
            position += 1
            value = (value + term() if operator == "+" else value - term()) % modulus
        return value

    result = expression()
    assert position == len(tokens)
    return result


@pytest.mark.parametrize(("num_operators", "modulus"), [(1, 11), (4, 11), (6, 7)])
def test_arithmetic_cot_evaluates_one_operation_per_step(num_operators, modulus):
    dataset = arithmetic.build(
        num_operators=num_operators, modulus=modulus, train_size=300, validation_size=20, test_size=20, seed=0
    )
    _assert_disjoint(dataset)
    for row in itertools.chain(*dataset.values()):
        steps = [row["question"], *(row["cot"].split(" = ") if row["cot"] else []), row["answer"]]
        assert len(steps) == num_operators + 1
        operators = [sum(token in "+-*/" for token in step.split()) for step in steps]
        assert operators == list(range(num_operators, -1, -1))
        assert {_evaluate(step.split(), modulus) for step in steps} == {int(row["answer"])}
        assert all(0 <= int(token) < modulus for token in row["question"].split() if token.isdigit())


def test_arithmetic_errors_name_the_option():
    with pytest.raises(ValueError, match=r"modulus=12.*prime.*--modulus"):
        arithmetic.build(modulus=12, train_size=5, validation_size=1, test_size=1, seed=0)
    with pytest.raises(ValueError, match=r"num_operators=0.*--num-operators"):
        arithmetic.build(num_operators=0, train_size=5, validation_size=1, test_size=1, seed=0)
    with pytest.raises(ValueError, match=r"exceeds the 16 distinct expressions.*--train-size"):
        arithmetic.build(num_operators=1, modulus=2, train_size=15, validation_size=1, test_size=1, seed=0)
    with pytest.raises(ValueError, match=r"found only 14 distinct questions.*--train-size"):  # 0/0 and 1/0 never occur
        arithmetic.build(num_operators=1, modulus=2, train_size=14, validation_size=1, test_size=1, seed=0)


# --- longest increasing subsequence -------------------------------------------------------------------


def _longest_increasing_ending_last(sequence: list[int]) -> int:
    """Brute force over all index subsets that end at the last position."""
    *rest, last = sequence
    return 1 + max(
        (
            len(chosen)
            for size in range(len(rest) + 1)
            for chosen in itertools.combinations(rest, size)
            if all(x < y for x, y in itertools.pairwise([*chosen, last]))
        ),
        default=0,
    )


def test_lis_table_and_answer_are_right():
    dataset = lis.build(length=8, max_value=20, train_size=100, validation_size=10, test_size=10, seed=0)
    _assert_disjoint(dataset)
    answers = set()
    for row in itertools.chain(*dataset.values()):
        sequence = [int(x) for x in row["question"].split()]
        table = [int(x) for x in row["cot"].split()]
        assert len(sequence) == 8 and all(1 <= x <= 20 for x in sequence)
        assert table == [_longest_increasing_ending_last(sequence[: i + 1]) for i in range(8)]
        assert int(row["answer"]) == max(table)
        answers.add(int(row["answer"]))
    assert len(answers) >= 4  # planted runs spread the answers


def test_lis_errors_name_the_option():
    with pytest.raises(ValueError, match=r"length=2.*--length"):
        lis.build(length=2, train_size=5, validation_size=1, test_size=1, seed=0)
    with pytest.raises(ValueError, match=r"max_value=4.*--max-value"):
        lis.build(length=5, max_value=4, train_size=5, validation_size=1, test_size=1, seed=0)
    with pytest.raises(ValueError, match=r"exceeds the 27 distinct sequences.*--train-size"):
        lis.build(length=3, max_value=3, train_size=26, validation_size=1, test_size=1, seed=0)


# --- GSM8K --------------------------------------------------------------------------------------------


def test_gsm8k_answers_only_lose_thousands_separators():
    """One normalize_answer in the project (evaluation's); the builder's step says what it does."""
    assert gsm8k.strip_thousands_separators(" 1,600 ") == "1600"
    assert gsm8k.parse_original_record({"question": "Q", "answer": "a\nb = 3\n#### -1,234"}) == (
        "Q",
        "a\nb = 3",
        "-1234",
    )
    assert gsm8k.parse_deng_line("Q||<<2*3=6>> #### 1,000,000") == ("Q", "<<2*3=6>>", "1000000")
    assert not hasattr(gsm8k, "normalize_answer")


def test_gsm8k_aug_keeps_every_deng_line(shared_dir):
    folder = shared_dir / "data/implicit_cot/gsm8k"
    dataset = gsm8k.build(variant="aug", input_dir=folder)
    for split, name in gsm8k.DENG_FILES.items():
        lines = [line for line in (folder / name).read_bytes().decode("utf-8").split("\n") if line]
        expected = [
            f"{line.rpartition(' #### ')[0]} #### {line.rpartition(' #### ')[2].replace(',', '')}" for line in lines
        ]
        assert [to_line(row) for row in dataset[split]] == expected
    assert {split: len(rows) for split, rows in dataset.items()} == {"train": 6973, "validation": 500, "test": 1319}
    _assert_disjoint(dataset)


def test_gsm8k_original_carves_validation_by_seed(shared_dir):
    folder = shared_dir / "data/gsm8k"
    dataset = gsm8k.build(variant="original", input_dir=folder, seed=0)
    assert {split: len(rows) for split, rows in dataset.items()} == {"train": 6973, "validation": 500, "test": 1319}
    _assert_disjoint(dataset)
    records = [json.loads(line) for line in _lines(folder / "train.jsonl")]
    assert set(dataset["train"]["question"]) | set(dataset["validation"]["question"]) == {
        r["question"] for r in records
    }
    assert all(re.fullmatch(r"-?\d+", answer) for answer in [*dataset["test"]["answer"], *dataset["train"]["answer"]])
    assert any(answer.startswith("-") for answer in dataset["train"]["answer"])
    assert "####" not in "".join(dataset["train"]["cot"]) and all("<<" in cot for cot in dataset["test"][:20]["cot"])
    validation = list(dataset["validation"]["question"])
    assert list(gsm8k.build(variant="original", input_dir=folder, seed=0)["validation"]["question"]) == validation
    assert list(gsm8k.build(variant="original", input_dir=folder, seed=1)["validation"]["question"]) != validation


def test_gsm8k_errors_name_the_option(shared_dir, tmp_path, capsys):
    for argv, message in [
        (["--variant", "aug", "--validation-size", "10"], "--variant original"),
        (["--variant", "original", "--train-file", "x.txt"], "--train-file"),
        (["--input-dir", str(tmp_path / "none")], "--input-dir"),
        (["--variant", "original", "--validation-size", "0"], "--validation-size"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            gsm8k.main([*argv, "--output-dir", str(tmp_path / "out")])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(ValueError, match="--validation-size < 7473"):
        gsm8k.build(variant="original", input_dir=shared_dir / "data/gsm8k", validation_size=7473)
    for name in gsm8k.DENG_FILES.values():
        (tmp_path / name).write_text("Q||<<1+1=2>> #### 2\nno separators here\n", encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"train_no_aug.txt:2: 'no separators here' is not 'question\|\|cot #### answer'"
    ):
        gsm8k.build(variant="aug", input_dir=tmp_path)


# --- determinism, layout, cards -----------------------------------------------------------------------


BUILDS = {
    "multiplication": (
        multiplication.main,
        ["--digits", "3", "--train-size", "500", "--validation-size", "20", "--test-size", "20"],
    ),
    "arithmetic": (arithmetic.main, ["--train-size", "300", "--validation-size", "20", "--test-size", "20"]),
    "lis": (lis.main, ["--train-size", "300", "--validation-size", "20", "--test-size", "20"]),
}


def _parquet_bytes(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*.parquet"))}


def test_every_flag_also_takes_the_training_scripts_underscore_spelling(tmp_path):
    argv = [
        "--length",
        "5",
        "--max-value",
        "30",
        "--train-size",
        "40",
        "--validation-size",
        "5",
        "--test-size",
        "5",
        "--config-name",
        "c",
    ]
    underscored = [f"--{arg[2:].replace('-', '_')}" if arg.startswith("--") else arg for arg in argv]
    assert lis.main([*argv, "--output-dir", str(tmp_path / "hyphens")]) == 0
    assert lis.main([*underscored, "--output_dir", str(tmp_path / "underscores")]) == 0
    assert _parquet_bytes(tmp_path / "hyphens") == _parquet_bytes(tmp_path / "underscores") != {}


@pytest.mark.parametrize("task", list(BUILDS))
def test_same_seed_gives_byte_identical_parquet_and_a_loadable_card(task, tmp_path):
    main, argv = BUILDS[task]
    for run in ("first", "second", "other-seed"):
        seed = "1" if run == "other-seed" else "0"
        assert main([*argv, "--seed", seed, "--output-dir", str(tmp_path / run)]) == 0
    first = _parquet_bytes(tmp_path / "first")
    assert first and first == _parquet_bytes(tmp_path / "second")
    assert first != _parquet_bytes(tmp_path / "other-seed")

    dataset = load_task_dataset(str(tmp_path / "first"))
    assert {split: len(rows) for split, rows in dataset.items()} == {
        "train": int(argv[-5]),
        "validation": 20,
        "test": 20,
    }
    assert dataset["train"].column_names == ["question", "cot", "answer"]
    _assert_disjoint(dataset)
    readme = (tmp_path / "first" / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(readme.split("---\n")[1])
    (config,) = meta["configs"]
    build = meta["seqvcr_builds"][config["config_name"]]
    assert build["seed"] == 0 and build["split_sizes"] == {"train": int(argv[-5]), "validation": 20, "test": 20}
    assert meta["license"] == "apache-2.0" and "arefin2025seqvcr" in build["cite"]
    assert (
        build["command"].startswith(f"python -m data_builders.{task} ") and "@inproceedings{arefin2025seqvcr" in readme
    )


def test_rebuild_command_in_card_rebuilds_identical_files(tmp_path):
    main, argv = BUILDS["multiplication"]
    main([*argv, "--seed", "3", "--output-dir", str(tmp_path / "a")])
    card = yaml.safe_load((tmp_path / "a" / "README.md").read_text(encoding="utf-8").split("---\n")[1])
    command = shlex.split(card["seqvcr_builds"]["3x3"]["command"])
    assert command[:3] == ["python", "-m", "data_builders.multiplication"]
    out = command.index("--output-dir")
    main([*command[3:out], "--output-dir", str(tmp_path / "b")])
    assert _parquet_bytes(tmp_path / "a") == _parquet_bytes(tmp_path / "b")


def _toy_task(built: list[int]) -> cli.BuilderTask:
    """A task declared like the cli docstring says, as a new builder module would declare it."""

    def add_arguments(parser):
        parser.add_argument("--width", type=int, default=3, help="digits per question")
        parser.add_argument("--notes-dir", type=Path, help="a path flag: reaches the card as a string")
        cli.add_split_arguments(parser, SplitSizes(train=6, validation=2, test=2))

    def check(*, width, notes_dir, train_size, validation_size, test_size):
        if width < 1:
            raise ValueError(f"width={width} must be >= 1; pass --width 1 or more")
        SplitSizes(train=train_size, validation=validation_size, test=test_size)

    def build(*, width, notes_dir, train_size, validation_size, test_size, seed):
        built.append(seed)
        sizes = SplitSizes(train=train_size, validation=validation_size, test=test_size)
        questions = [str(seed * 1000 + i).zfill(width) for i in range(sizes.total)]
        return split_in_order(make_split(questions, [""] * sizes.total, ["1"] * sizes.total), sizes)

    return cli.BuilderTask(
        name="toy",
        description="A toy task.",
        add_arguments=add_arguments,
        config_name=lambda options: f"toy-w{options['width']}",
        config_name_help="toy-w<width>",
        check=check,
        build=build,
        card=lambda options: dict(
            task="toy",
            summary="Toy.",
            parameters={"width": options["width"], "notes_dir": options["notes_dir"]},
            license="apache-2.0",
            license_note="toy.",
            citations=[],
        ),
    )


def test_a_declared_task_gets_the_whole_command_line(tmp_path, capsys):
    """Flags in declaration order, defaults spelled out in the rebuild command, checks before any build."""
    built = []
    task = _toy_task(built)
    out = tmp_path / "out"
    assert cli.main(task, ["--notes-dir", str(tmp_path), "--seed", "4", "--output-dir", str(out)]) == 0
    assert "wrote config 'toy-w3' (train 6, validation 2, test 2)" in capsys.readouterr().out
    meta = yaml.safe_load((out / "README.md").read_text(encoding="utf-8").split("---\n")[1])
    assert meta["seqvcr_builds"]["toy-w3"]["command"] == shlex.join(
        [
            "python",
            "-m",
            "data_builders.toy",
            "--width",
            "3",
            "--notes-dir",
            str(tmp_path),
            "--train-size",
            "6",
            "--validation-size",
            "2",
            "--test-size",
            "2",
            "--seed",
            "4",
            "--config-name",
            "toy-w3",
            "--output-dir",
            str(out),
        ]
    )
    assert meta["seqvcr_builds"]["toy-w3"]["parameters"] == {"width": 3, "notes_dir": str(tmp_path)}
    assert load_task_dataset(out)["test"]["question"] == ["4000", "4001"]
    for argv, message in [(["--width", "0"], "pass --width 1 or more"), (["--test-size", "0"], "--test-size")]:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(task, [*argv, "--output-dir", str(tmp_path / "bad")])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert built == [4] and not (tmp_path / "bad").exists()
    with pytest.raises(SystemExit):
        cli.main(task, ["--help"])
    assert capsys.readouterr().out.startswith("usage: python -m data_builders.toy [-h] [--width WIDTH]")


def _tiny(prefix: str, rows: int = 3) -> DatasetDict:
    def split_rows(split: str) -> dict[str, list[str]]:
        return {"question": [f"{prefix}{split}{i}" for i in range(rows)], "cot": [""] * rows, "answer": ["1"] * rows}

    return DatasetDict({split: Dataset.from_dict(split_rows(split)) for split in ("train", "validation", "test")})


def _card(config_name: str) -> str:
    return dataset_card(
        config_name=config_name,
        task="demo",
        summary="Demo.",
        example={"question": "q", "cot": "c", "answer": "a"},
        parameters={"p": 1},
        seed=0,
        split_sizes={"train": 3, "validation": 3, "test": 3},
        license="mit",
        license_note="demo.",
        citations=["cobbe2021gsm8k"],
        command=f"python -m demo --config-name {config_name}",
    )


def test_dataset_card_cites_from_the_library_and_names_it_for_unknown_keys():
    cited = _card("demo").split("```bibtex\n")[1].split("```")[0]
    assert cited == bibtex(["cobbe2021gsm8k", "arefin2025seqvcr"]) + "\n"  # Seq-VCR always, after the task's own
    with pytest.raises(ValueError, match=r"\['nobody2099'\].*hf_seqvcr\.citations\.CITATIONS"):
        dataset_card(
            config_name="x",
            task="demo",
            summary="Demo.",
            example={"question": "q", "cot": "c", "answer": "a"},
            parameters={},
            seed=0,
            split_sizes={"train": 1},
            license="mit",
            license_note="demo.",
            citations=["nobody2099"],
            command="python -m demo",
        )


def test_second_config_is_added_and_rebuilding_one_replaces_only_it(tmp_path):
    write_dataset_dir(_tiny("a"), tmp_path, config_name="first", card=_card("first"))
    write_dataset_dir(_tiny("b"), tmp_path, config_name="second", card=_card("second"))
    write_dataset_dir(_tiny("c", rows=2), tmp_path, config_name="first", card=_card("first"))
    assert list(load_task_dataset(str(tmp_path), "first")["train"]["question"]) == ["ctrain0", "ctrain1"]
    assert list(load_task_dataset(str(tmp_path), "second")["test"]["question"]) == ["btest0", "btest1", "btest2"]
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(readme.split("---\n")[1])
    assert [c["config_name"] for c in meta["configs"]] == ["first", "second"]
    assert set(meta["seqvcr_builds"]) == {"first", "second"}
    assert readme.count("## Config `first`") == readme.count("## Config `second`") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "first", "second"]


def test_single_config_loads_without_naming_it(tmp_path):
    write_dataset_dir(_tiny("a"), tmp_path, config_name="only", card=_card("only"))
    assert list(datasets.load_dataset(str(tmp_path))["validation"]["question"]) == [
        "avalidation0",
        "avalidation1",
        "avalidation2",
    ]


def test_failed_write_leaves_previous_data_untouched(tmp_path, monkeypatch):
    write_dataset_dir(_tiny("a"), tmp_path, config_name="first", card=_card("first"))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    def broken(self, path, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Dataset, "to_parquet", broken)
    for config_name in ("first", "second"):
        with pytest.raises(OSError, match="disk full"):
            write_dataset_dir(_tiny("b"), tmp_path, config_name=config_name, card=_card(config_name))
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_user_data_and_readme_are_never_clobbered(tmp_path):
    (tmp_path / "README.md").write_text("# My notes\n\nKeep me.\n", encoding="utf-8")
    (tmp_path / "mine").mkdir()
    with pytest.raises(ValueError, match=r"refusing to replace.*--output-dir or --config-name"):
        write_dataset_dir(_tiny("a"), tmp_path, config_name="mine", card=_card("mine"))
    write_dataset_dir(_tiny("a"), tmp_path, config_name="demo", card=_card("demo"))
    assert "Keep me." in (tmp_path / "README.md").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match=r"not a directory.*--output-dir"):
        write_dataset_dir(_tiny("a"), tmp_path / "README.md", config_name="demo", card=_card("demo"))
    with pytest.raises(ValueError, match=r"reserved.*--config-name"):
        write_dataset_dir(_tiny("a"), tmp_path, config_name="data", card=_card("data"))


def test_merge_cards_is_idempotent_per_config():
    once = merge_cards(_card("x"), _card("y"))
    assert merge_cards(once, _card("y")) == once == merge_cards(merge_cards(_card("x"), _card("y")), _card("x"))


# --- load_task_dataset errors --------------------------------------------------------------------------


def test_load_task_dataset_errors_name_the_fix(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"does not exist.*--output-dir"):
        load_task_dataset(str(tmp_path / "missing"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        load_task_dataset(str(tmp_path / "file.txt"))
    bad = DatasetDict(
        {split: Dataset.from_dict({"question": ["q"], "text": ["t"]}) for split in ("train", "validation", "test")}
    )
    write_dataset_dir(bad, tmp_path / "bad", config_name="bad", card=_card("bad"))
    with pytest.raises(ValueError, match=r"no column\(s\) \['answer'\]"):
        load_task_dataset(str(tmp_path / "bad"))

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'user/data' on the Hub (ConnectError)")

    monkeypatch.setattr("data_builders.loading.load_dataset", unreachable)
    with pytest.raises(ValueError, match="cannot reach the Hub; pass a local directory"):
        load_task_dataset("user/data")


def test_hub_id_while_offline_says_pass_a_local_directory(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "home"))
    code = (
        "from data_builders import load_task_dataset\n"
        "try:\n    load_task_dataset('someone/some-data')\nexcept ValueError as error:\n    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "cannot reach the Hub; pass a local directory" in result.stdout, result.stderr


# --- --push-to-hub --------------------------------------------------------------------------------------


@pytest.fixture
def fake_hub(monkeypatch):
    """Stands in for hf_seqvcr.hub and data_builders.publish: records calls, rejects repo ids without a slash."""
    calls = []

    class HubPublishError(RuntimeError):
        pass

    def validate_repo_id(repo_id):
        calls.append(("validate", repo_id))
        if "/" not in repo_id:
            raise ValueError(f"repo_id {repo_id!r} is not a valid Hub repo id; use 'namespace/name'")
        return repo_id

    def push_dataset(dataset, repo_id, **kwargs):
        calls.append(("push", repo_id, kwargs, {split: len(rows) for split, rows in dataset.items()}))
        return types.SimpleNamespace(repo_url=f"https://hub.example/datasets/{repo_id}")

    hub = types.SimpleNamespace(validate_repo_id=validate_repo_id, HubPublishError=HubPublishError)
    monkeypatch.setitem(sys.modules, "hf_seqvcr.hub", hub)
    monkeypatch.setitem(sys.modules, "data_builders.publish", types.SimpleNamespace(push_dataset=push_dataset))
    return calls


def test_push_validates_first_then_writes_locally_then_pushes(fake_hub, tmp_path, capsys):
    argv = ["--num-operators", "2", "--train-size", "30", "--validation-size", "5", "--test-size", "5"]
    with pytest.raises(SystemExit) as exit_info:
        arithmetic.main([*argv, "--output-dir", str(tmp_path / "bad"), "--push-to-hub", "no-slash"])
    assert exit_info.value.code == 2 and "namespace/name" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()

    out = tmp_path / "out"
    assert (
        arithmetic.main([*argv, "--output-dir", str(out), "--push-to-hub", "me/data", "--private", "--revision", "dev"])
        == 0
    )
    (_, _), (kind, repo_id, kwargs, sizes) = fake_hub[-2:]
    assert (kind, repo_id, sizes) == ("push", "me/data", {"train": 30, "validation": 5, "test": 5})
    assert kwargs["config_name"] == "ops2-mod11" and kwargs["private"] is True and kwargs["revision"] == "dev"
    assert kwargs["card"] == (out / "README.md").read_text(encoding="utf-8") and kwargs["local_path"] == out
    assert "pushed config 'ops2-mod11' to https://hub.example/datasets/me/data (branch dev)" in capsys.readouterr().out


def test_draw_distinct_keeps_first_draw_per_question():
    dataset = draw_distinct(lambda rng: (str(rng.randrange(5)), "", "x"), 5, seed=0)
    assert sorted(dataset["question"]) == ["0", "1", "2", "3", "4"]


def test_cli_push_round_trips_through_the_loopback_hub(hub, tmp_path, capsys):
    """The real hf_seqvcr.hub publishes what the builder wrote; load_task_dataset reads it back by repo id;
    a second config pushed to the same repo leaves the Hub card with both configs, like the local card."""
    from hub_server import USER

    repo_id = f"{USER}/builders-{uuid.uuid4().hex[:8]}"
    argv = ["--train-size", "40", "--validation-size", "5", "--test-size", "5", "--output-dir", str(tmp_path)]
    assert multiplication.main(["--digits", "2", *argv, "--push-to-hub", repo_id]) == 0
    assert f"pushed config '2x2' to {hub.endpoint}/datasets/{repo_id}\n" in capsys.readouterr().out
    local, pushed = load_task_dataset(str(tmp_path), "2x2"), load_task_dataset(repo_id, "2x2")
    assert {split: rows.to_list() for split, rows in pushed.items()} == {
        split: rows.to_list() for split, rows in local.items()
    }

    assert multiplication.main(["--digits", "1", *argv, "--push-to-hub", repo_id]) == 0
    local_card = (tmp_path / "README.md").read_text(encoding="utf-8")
    hub_card = hub.repo(repo_id, "dataset").head().files["README.md"].content.decode()
    local_meta, hub_meta = yaml.safe_load(local_card.split("---")[1]), yaml.safe_load(hub_card.split("---")[1])
    assert hub_meta["seqvcr_builds"] == local_meta["seqvcr_builds"]
    assert set(local_meta["seqvcr_builds"]) == {c["config_name"] for c in hub_meta["configs"]} == {"1x1", "2x2"}
    assert hub_card.split("---\n", 2)[2] == local_card.split("---\n", 2)[2]  # same prose and config sections
    assert load_task_dataset(repo_id, "2x2")["train"].to_list() == local["train"].to_list()


def test_directories_named_alike_load_their_own_rows(tmp_path):
    """datasets keys a local folder's cache on its name and card: two runs' ``_dataset`` folders, or one rebuilt
    in place, must still load their own rows."""
    argv = ["--digits", "2", "--validation-size", "5", "--test-size", "5"]
    for run, train_size in (("a", 40), ("b", 30), ("a", 20)):
        multiplication.main([*argv, "--train-size", str(train_size), "--output-dir", str(tmp_path / run / "_dataset")])
        assert len(load_task_dataset(tmp_path / run / "_dataset")["train"]) == train_size
    assert len(load_task_dataset(tmp_path / "b" / "_dataset", "2x2")["train"]) == 30


def test_card_data_files_follow_the_splits_written(tmp_path):
    """A card that names other splits than the dataset has still yields a loadable directory."""
    two_splits = DatasetDict({split: _tiny("a")[split] for split in ("train", "test")})
    write_dataset_dir(two_splits, tmp_path, config_name="demo", card=_card("demo"))
    assert sorted(load_task_dataset(tmp_path)) == ["test", "train"]


def test_builders_lists_exactly_the_task_modules():
    import importlib
    import pkgutil

    import data_builders

    modules = [info.name for info in pkgutil.iter_modules(data_builders.__path__)]
    tasks = {name for name in modules if hasattr(importlib.import_module(f"data_builders.{name}"), "TASK")}
    assert set(data_builders.BUILDERS) == tasks and len(data_builders.BUILDERS) == len(tasks)


def test_build_once_reuses_its_own_build_refuses_another_and_leaves_no_half_build(tmp_path, monkeypatch):
    from data_builders import build_once

    invocation = "multiplication --digits 2 --train-size 20 --validation-size 5 --test-size 5 --seed 3"
    target = build_once(invocation, tmp_path / "data")
    files = {p: p.stat().st_mtime_ns for p in target.rglob("*") if p.is_file()}
    assert len(load_task_dataset(target)["train"]) == 20
    assert build_once(invocation, target) == target  # the same invocation: reused, nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in target.rglob("*") if p.is_file()} == files
    with pytest.raises(FileExistsError, match="--seed 4"):
        build_once(invocation.replace("--seed 3", "--seed 4"), target)

    def fails_halfway(argv):  # a builder that wrote part of its output, then reported an error
        output = Path(argv[argv.index("--output-dir") + 1])
        output.mkdir()
        (output / "half.parquet").write_text("")
        return 1

    monkeypatch.setattr(
        sys.modules["data_builders.build_once"], "import_module", lambda name: types.SimpleNamespace(main=fails_halfway)
    )
    with pytest.raises(RuntimeError, match="failed"):
        build_once("multiplication --digits 2", tmp_path / "bad")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # neither bad nor bad.partial
