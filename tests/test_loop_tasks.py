"""The looped-transformer tasks (n-ary addition, p-hop induction, i-GSM) against brute-force references."""

from __future__ import annotations

import itertools
import random
import re
import shlex
from collections import Counter
from pathlib import Path

import datasets
import pytest
import yaml
from datasets import DatasetDict

from data_builders import igsm, load_task_dataset, nary_addition, phop

CHECK_SIZES = dict(train_size=10, validation_size=1, test_size=1)  # split sizes of the check_options tests


@pytest.fixture(autouse=True)
def _quiet_private_cache(tmp_path_factory, monkeypatch):
    """load_dataset caches in a throwaway dir, and no progress bars clutter failures."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("hf-cache")))
    datasets.disable_progress_bars()


def _rows(dataset: DatasetDict):
    return itertools.chain(*dataset.values())


def _assert_disjoint(dataset: DatasetDict) -> None:
    everything = [question for rows in dataset.values() for question in rows["question"]]
    assert len(set(everything)) == len(everything)


def _ascii(row: dict[str, str]) -> bool:
    return all(text.isascii() and text.isprintable() for text in row.values())


# --- n-ary addition -----------------------------------------------------------------------------------


def _operands(question: str) -> list[str]:
    return question.split(" + ")


def test_nary_addition_rows_are_sums_and_each_eval_split_has_its_n():
    dataset = nary_addition.build(
        train_n=[2, 4, 8], eval_n=[3, 8], eval_n_size=30, train_size=600, validation_size=30, test_size=30, seed=0
    )
    assert list(dataset) == ["train", "validation", "test", "test_n3", "test_n8"]
    _assert_disjoint(dataset)
    for split, rows in dataset.items():
        counts = Counter(len(_operands(question)) for question in rows["question"])
        expected = {int(split.removeprefix("test_n"))} if split.startswith("test_n") else {2, 4, 8}
        assert set(counts) == expected, split
        for row in rows:
            numbers = _operands(row["question"])
            assert all(re.fullmatch(r"\d{3}", number) for number in numbers) and row["cot"] == ""
            assert row["answer"] == str(sum(int(number) for number in numbers)) and _ascii(row)
    assert min(Counter(len(_operands(q)) for q in dataset["train"]["question"]).values()) > 150  # uniform over n


def test_nary_addition_reversed_digits_are_the_same_draws_read_backwards():
    options = dict(train_n=[2, 5], eval_n=[7], eval_n_size=20, train_size=200, validation_size=10, test_size=10)
    plain = nary_addition.build(**options, seed=4)
    reverse = nary_addition.build(**options, reverse_digits=True, seed=4)
    for split in plain:
        for forward, backward in zip(plain[split], reverse[split], strict=True):
            assert backward["question"] == " + ".join(number[::-1] for number in _operands(forward["question"]))
            assert backward["answer"] == forward["answer"][::-1]


def test_nary_addition_eval_splits_depend_only_on_seed_n_and_size():
    """test_n<k> is its own stream: train size and the other --eval-n values do not move it; the mixture
    still avoids it even when n is a training n and the space is small."""
    small = nary_addition.build(train_n=[2], eval_n=[2, 24], eval_n_size=2000, train_size=300, seed=1)
    large = nary_addition.build(train_n=[2], eval_n=[24, 2], eval_n_size=2000, train_size=20_000, seed=1)
    for split in ("test_n2", "test_n24"):
        assert small[split]["question"] == large[split]["question"]
    assert not set(large["test_n2"]["question"]) & set(large["train"]["question"])
    assert (
        nary_addition.build(train_n=[2], eval_n=[24], eval_n_size=5, train_size=5, seed=2)["test_n24"]["question"]
        != small["test_n24"]["question"][:5]
    )


def test_nary_addition_errors_name_the_option():
    ok = dict(train_n=[2, 4], eval_n=[8], eval_n_size=10, reverse_digits=False, **CHECK_SIZES)
    for bad, message in [
        (dict(train_n=[]), r"train_n=\[\] must be a non-empty list.*--train-n"),
        (dict(train_n=[2, 1]), r"train_n=1 must be an integer >= 2.*--train-n"),
        (dict(eval_n=[8, 8]), r"eval_n=\[8, 8\] repeats a value.*--eval-n"),
        (dict(eval_n_size=0), r"eval_n_size=0.*--eval-n-size"),
        (dict(eval_n=[2], eval_n_size=10**6 + 1), r"exceeds the 1,000,000 distinct sums of 2 numbers.*--eval-n-size"),
        (
            dict(train_n=[2], eval_n=[2], eval_n_size=10, train_size=10**6 - 11),
            r"exceeds the 999,990 distinct sums.*--train-size",
        ),
    ]:
        with pytest.raises(ValueError, match=message):
            nary_addition.check_options(**{**ok, **bad})
    nary_addition.check_options(**ok)


# --- p-hop induction ----------------------------------------------------------------------------------


def _find_1(v: list[str], i: int) -> int:
    """Def. A.1 verbatim, 1-based: max({0} ∪ {j <= i : v_{j-1} = v_i}); position 0 stays 0."""
    return max([0] + [j for j in range(2, i + 1) if v[j - 2] == v[i - 1]]) if i else 0


def _hop_chain(v: list[str], hops: int) -> list[int]:
    """[n, find_1(v, n), ..., find_p(v, n)]."""
    chain = [len(v)]
    for _ in range(hops):
        chain.append(_find_1(v, chain[-1]))
    return chain


def hop_p(v: list[str], hops: int) -> str | None:
    """v_{find_p(v, n)}, or None for ⊥."""
    position = _hop_chain(v, hops)[-1]
    return v[position - 1] if position else None


def test_phop_answer_is_the_brute_force_hop_and_every_hop_moves_left():
    rng = random.Random(0)
    settings = [
        (rng.randint(2, 6), hops, length) for hops in (1, 2, 3, 5) for length in (2 * hops + 1, 2 * hops + 9, 40)
    ]
    settings += [(4, 16, 256), (4, 32, 256), (26, 4, 32)]  # the paper's n and p, and the whole alphabet
    for alphabet_size, hops, length in settings:
        for _ in range(300 if length < 100 else 30):
            question, cot, answer = phop.draw_sequence(rng, alphabet_size=alphabet_size, length=length, hops=hops)
            v = question.split(" ")
            assert len(v) == length and set(v) <= set("abcdefghijklmnopqrstuvwxyz"[:alphabet_size]) and cot == ""
            chain = _hop_chain(v, hops)
            assert all(left > right > 0 for left, right in itertools.pairwise(chain)), (question, chain)
            assert answer == hop_p(v, hops) is not None


def _generable(v: list[str], hops: int) -> bool:
    """What the generator draws: every hop moves left, and no hop lands on the slot just left of where the
    previous hop landed (that slot holds the symbol the next hop looks for, so landing there overlaps two pairs)."""
    chain = _hop_chain(v, hops)
    steps = list(itertools.pairwise(chain))
    return chain[-1] > 0 and all(right < left - (index > 0) for index, (left, right) in enumerate(steps))


@pytest.mark.parametrize(("alphabet_size", "length", "hops"), [(2, 3, 1), (2, 7, 2), (3, 6, 1), (3, 8, 3), (4, 7, 2)])
def test_phop_draws_exactly_the_sequences_it_counts(alphabet_size, length, hops):
    """Enumerate every sequence: the generable ones number sequence_count, and enough draws reach them all."""
    letters = "abcd"[:alphabet_size]
    generable = {" ".join(v) for v in itertools.product(letters, repeat=length) if _generable(list(v), hops)}
    assert len(generable) == phop.sequence_count(alphabet_size=alphabet_size, length=length, hops=hops)
    rng = random.Random(0)
    options = dict(alphabet_size=alphabet_size, length=length, hops=hops)
    assert {phop.draw_sequence(rng, **options)[0] for _ in range(40 * len(generable))} == generable


def test_phop_splits_are_disjoint_and_answers_spread():
    dataset = phop.build(alphabet_size=4, length=12, hops=3, train_size=400, validation_size=20, test_size=20, seed=0)
    _assert_disjoint(dataset)
    answers = Counter(row["answer"] for row in _rows(dataset))
    assert set(answers) == set("abcd") and min(answers.values()) > 60
    assert all(row["answer"] == hop_p(row["question"].split(), 3) for row in _rows(dataset))


def test_phop_errors_name_the_option():
    ok = dict(alphabet_size=4, length=9, hops=4, **CHECK_SIZES)
    for bad, message in [
        (dict(alphabet_size=1), r"alphabet_size=1 must be an integer in 2..26.*--alphabet-size"),
        (dict(alphabet_size=27), r"alphabet_size=27.*--alphabet-size"),
        (dict(hops=0), r"hops=0.*--hops"),
        (dict(length=8), r"length=8 must be an integer >= 2 \* hops \+ 1 = 9.*--length or lower --hops"),
        (dict(alphabet_size=2, length=3, hops=1, train_size=1), r"exceeds the 2 distinct.*--train-size"),
    ]:
        with pytest.raises(ValueError, match=message):
            phop.check_options(**{**ok, **bad})
    phop.check_options(**ok)


# --- i-GSM --------------------------------------------------------------------------------------------

NAME = r"[A-Z]#[A-Z]"


def _parse_question(question: str) -> tuple[dict[str, str], list[str], str]:
    """Definitions (name -> right-hand side), names in question order, and the query; checks the whole text."""
    body, query = question.rsplit(" ", 1)
    equations = re.findall(rf"({NAME}) := ([^.]+)\.", body)
    assert " ".join(f"{name} := {rhs}." for name, rhs in equations) == body and re.fullmatch(rf"{NAME}\?", query)
    names = [name for name, _ in equations]
    assert len(set(names)) == len(names)
    return dict(equations), names, query[:-1]


def _tokens(rhs: str) -> list[str]:
    tokens = re.findall(rf"\d+|{NAME}|[-+*()]", rhs)
    assert "".join(tokens) == rhs.replace(" ", "")
    return tokens


def _evaluate(definitions: dict[str, str], name: str, modulus: int, visiting: frozenset[str] = frozenset()) -> int:
    """Recursive descent with the usual precedence (* before +/-, brackets), recursing into referenced names."""
    assert name not in visiting, f"cycle through {name}"
    tokens, position = _tokens(definitions[name]), 0

    def factor() -> int:
        nonlocal position
        token = tokens[position]
        position += 1
        if token == "(":
            value = expression()
            assert tokens[position] == ")"
            position += 1
            return value
        return int(token) if token.isdigit() else _evaluate(definitions, token, modulus, visiting | {name})

    def term() -> int:
        nonlocal position
        value = factor()
        while position < len(tokens) and tokens[position] == "*":
            position += 1
            value *= factor()
        return value

    def expression() -> int:
        nonlocal position
        value = term()
        while position < len(tokens) and tokens[position] in "+-":
            sign = 1 if tokens[position] == "+" else -1
            position += 1
            value += sign * term()
        return value

    value = expression()
    assert position == len(tokens)
    return value % modulus


def _uses(rhs: str) -> list[str]:
    return re.findall(NAME, rhs)


def _ancestors(definitions: dict[str, str], query: str) -> set[str]:
    found, stack = set(), [query]
    while stack:
        name = stack.pop()
        if name not in found:
            found.add(name)
            stack += _uses(definitions[name])
    return found


def _check_problem(row: dict[str, str], *, needed: int, distractors: int, max_operands: int, modulus: int) -> None:
    definitions, names, query = _parse_question(row["question"])
    assert row["answer"] == str(_evaluate(definitions, query, modulus))
    ancestors = _ancestors(definitions, query)
    assert len(ancestors) == needed and len(names) == needed + distractors  # so exactly `distractors` are unneeded
    for rhs in definitions.values():
        assert len(_uses(rhs)) <= max_operands and len(set(_uses(rhs))) == len(_uses(rhs))
        if rhs.isdigit():
            assert 0 <= int(rhs) < modulus
        coefficient = re.match(r"(\d+) \* ", rhs)
        assert coefficient is None or 2 <= int(coefficient[1]) < modulus
    steps = re.findall(rf"({NAME}) = ([^ ]+)\. => ({NAME}) = (\d+)\.", row["cot"])
    assert " ".join(f"{a} = {rhs}. => {b} = {v}." for a, rhs, b, v in steps) == row["cot"]
    known: list[str] = []
    for name, rhs, restated, value in steps:
        assert name == restated and rhs == definitions[name].replace(" ", "")
        ready = [
            other
            for other in names
            if other in ancestors and other not in known and set(_uses(definitions[other])) <= set(known)
        ]
        assert name == ready[0]  # the first equation of the question whose operands are known
        assert int(value) == _evaluate(definitions, name, modulus)
        known.append(name)
    assert set(known) == ancestors and len(known) == needed and known[-1] == query


@pytest.mark.parametrize(
    ("needed", "distractors", "max_operands", "modulus"), [(1, 0, 1, 7), (2, 1, 1, 2), (6, 3, 3, 7), (12, 6, 4, 23)]
)
def test_igsm_answers_and_cot_agree_with_an_independent_evaluator(needed, distractors, max_operands, modulus):
    dataset = igsm.build(
        needed=needed,
        distractors=distractors,
        max_operands=max_operands,
        modulus=modulus,
        train_size=250,
        validation_size=10,
        test_size=10,
        seed=0,
    )
    _assert_disjoint(dataset)
    for row in _rows(dataset):
        _check_problem(row, needed=needed, distractors=distractors, max_operands=max_operands, modulus=modulus)
        assert _ascii(row)
    if needed > 1 and modulus == 7:
        answers = Counter(row["answer"] for row in _rows(dataset))
        assert set(answers) == {str(value) for value in range(7)}
        questions = " ".join(dataset["train"]["question"])
        assert " - " in questions and " * (" in questions  # signs and bracketed coefficients occur


def test_igsm_reproduces_the_papers_table_2_example():
    """Our order rule and format give the paper's chain of thought (⟹ as =>, the coefficient bracketed)."""

    def sum_of(name, *terms, coefficient=1):
        return igsm.Equation(name, terms=tuple(terms), coefficient=coefficient)

    plus = lambda *names: [("+", name) for name in names]  # noqa: E731
    equations = [
        igsm.Equation("E#I", constant=4),
        sum_of("E#J", *plus("E#I")),
        sum_of("K#N", *plus("I#N", "J#O", "F#K")),
        sum_of("F#K", *plus("E#J")),
        sum_of("J#O", *plus("F#K", "K#O", "E#J")),
        sum_of("H#J", *plus("E#J", "F#K")),
        sum_of("I#P", *plus("L#M", "I#N", "K#O")),
        sum_of("I#M", *plus("J#O", "J#P", "F#K")),
        sum_of("J#P", ("+", "H#J"), ("-", "F#K")),
        sum_of("L#M", *plus("I#N", "J#P", "F#K")),
        sum_of("I#N", *plus("J#P", "H#J", "E#I"), coefficient=2),
        sum_of("K#O", *plus("J#P", "I#N", "E#J")),
    ]
    question, cot, answer = igsm.format_problem(equations, "I#P", 7)
    paper_question = (
        "E#I := 4. E#J := E#I. K#N := I#N + J#O + F#K. F#K := E#J. J#O := F#K + K#O + E#J. H#J := E#J + F#K. "
        "I#P := L#M + I#N + K#O. I#M := J#O + J#P + F#K. J#P := H#J - F#K. L#M := I#N + J#P + F#K. "
        "I#N := 2 * J#P + H#J + E#I. K#O := J#P + I#N + E#J. I#P?"
    )
    paper_cot = (
        "E#I = 4. ⟹ E#I = 4. E#J = E#I. ⟹ E#J = 4. F#K = E#J. ⟹ F#K = 4. H#J = E#J+F#K. ⟹ H#J = 1. "
        "J#P = H#J-F#K. ⟹ J#P = 4. I#N = 2J#P+2H#J+2E#I. ⟹ I#N = 4. L#M = I#N+J#P+F#K. ⟹ L#M = 5. "
        "K#O = J#P+I#N+E#J. ⟹ K#O = 5. I#P = L#M+I#N+K#O. ⟹ I#P = 0."
    )
    assert question == paper_question.replace("2 * J#P + H#J + E#I", "2 * (J#P + H#J + E#I)")
    assert cot == paper_cot.replace("⟹", "=>").replace("2J#P+2H#J+2E#I", "2*(J#P+H#J+E#I)")
    assert answer == "0"
    _check_problem(
        {"question": question, "cot": cot, "answer": answer}, needed=9, distractors=3, max_operands=3, modulus=7
    )


def test_igsm_without_cot_keeps_the_same_problems():
    options = dict(train_size=30, validation_size=5, test_size=5, seed=3)
    with_cot, without = igsm.build(**options), igsm.build(**options, cot=False)
    for split in with_cot:
        assert without[split]["question"] == with_cot[split]["question"]
        assert without[split]["answer"] == with_cot[split]["answer"] and set(without[split]["cot"]) == {""}


def test_igsm_parameters_are_edges_between_consecutive_levels():
    names = igsm.parameter_names(4)
    assert len(names) == 3 * 4 * 4 and {"A#E", "E#I", "I#P", "L#M"} <= set(names)
    assert not {"A#I", "E#F", "M#A"} & set(names)


def test_igsm_errors_name_the_option():
    ok = dict(needed=6, distractors=3, max_operands=3, entities_per_level=4, modulus=7, cot=True, **CHECK_SIZES)
    for bad, message in [
        (dict(needed=0), r"needed=0.*--needed"),
        (dict(distractors=-1), r"distractors=-1.*--distractors"),
        (dict(max_operands=0), r"max_operands=0.*--max-operands"),
        (dict(entities_per_level=7), r"entities_per_level=7 must be an integer in 1..6.*--entities-per-level"),
        (dict(modulus=1), r"modulus=1.*--modulus"),
        (dict(needed=10, distractors=3, entities_per_level=2), r"13 exceeds the 12 parameters.*--entities-per-level"),
        (
            dict(needed=1, distractors=0, max_operands=1, entities_per_level=1, modulus=2, train_size=30),
            r"exceeds the 30 distinct problems.*--train-size",
        ),
    ]:
        with pytest.raises(ValueError, match=message):
            igsm.check_options(**{**ok, **bad})
    igsm.check_options(**ok)


# --- command line: determinism, layout, cards -----------------------------------------------------------

SIZES = ["--train-size", "200", "--validation-size", "10", "--test-size", "10"]
BUILDS = {
    "nary_addition": (
        nary_addition.main,
        ["--train-n", "2", "4", "--eval-n", "4", "6", "--eval-n-size", "10", "--reverse-digits", *SIZES],
        "nary-n2-4-rev",
        ["train", "validation", "test", "test_n4", "test_n6"],
        "saunshi2025reasoning",
    ),
    "phop": (
        phop.main,
        ["--length", "16", "--hops", "3", *SIZES],
        "phop-a4-n16-p3",
        ["train", "validation", "test"],
        "sanford2024transformers",
    ),
    "igsm": (
        igsm.main,
        ["--needed", "4", "--no-cot", *SIZES],
        "igsm-q4-d3-ops3-mod7",
        ["train", "validation", "test"],
        "ye2024physics",
    ),
}


def _parquet_bytes(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*.parquet"))}


@pytest.mark.parametrize("task", list(BUILDS))
def test_cli_is_deterministic_loadable_and_carded(task, tmp_path):
    main, argv, config_name, splits, citation = BUILDS[task]
    for run, seed in (("first", "0"), ("second", "0"), ("other-seed", "1")):
        assert main([*argv, "--seed", seed, "--output-dir", str(tmp_path / run)]) == 0
    first = _parquet_bytes(tmp_path / "first")
    assert first and first == _parquet_bytes(tmp_path / "second") and first != _parquet_bytes(tmp_path / "other-seed")

    dataset = load_task_dataset(str(tmp_path / "first"))
    assert list(dataset) == splits and dataset["train"].column_names == ["question", "cot", "answer"]
    assert {split: len(rows) for split, rows in dataset.items()} == {
        split: 200 if split == "train" else 10 for split in splits
    }
    _assert_disjoint(dataset)
    assert datasets.load_dataset(str(tmp_path / "first"), config_name)[splits[-1]].num_rows == 10
    readme = (tmp_path / "first" / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(readme.split("---\n")[1])
    (config,) = meta["configs"]
    assert config["config_name"] == config_name and [item["split"] for item in config["data_files"]] == splits
    build = meta["seqvcr_builds"][config_name]
    assert build["task"] in readme and meta["license"] == "apache-2.0" and "synthetic" in readme
    assert {"saunshi2025reasoning", citation, "arefin2025seqvcr"} <= set(build["cite"])
    assert f"@inproceedings{{{citation}" in readme or f"@article{{{citation}" in readme

    command = shlex.split(build["command"])  # lists and booleans round-trip through the rebuild command
    assert command[:3] == ["python", "-m", f"data_builders.{task}"]
    out = command.index("--output-dir")
    assert main([*command[3:out], "--output-dir", str(tmp_path / "rebuilt")]) == 0
    assert _parquet_bytes(tmp_path / "rebuilt") == first


@pytest.mark.parametrize(
    ("main", "argv", "message"),
    [
        (nary_addition.main, ["--train-n", "2", "2"], "--train-n"),
        (phop.main, ["--length", "8", "--hops", "4"], "--length"),
        (igsm.main, ["--modulus", "1"], "--modulus"),
    ],
)
def test_cli_rejects_bad_options_before_writing(main, argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--output-dir", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
