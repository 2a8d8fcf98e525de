"""The efficacy study resumes where it stopped, keeps its two sets apart, and says when
its rows come from more than one commit (issue 12: "never mixes rows from two commits
without saying so"). The training itself is bench.closed_loop's, tested elsewhere."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from bench import admission, efficacy, efficacy_report, run_figures
from bench.closed_loop import LoopResult


def fake_row(set_name: str, path: Path, seed: int) -> dict[str, Any]:
    return {
        "set": set_name,
        "case": path.stem,
        "family": "gan",
        "seed": seed,
        "metric": "modes_covered",
        "better": "higher",
        "healthy": 8.0,
        "healthy_actions": [],
        "pathological": True,
        "off": 2.0,
        "auto": 8.0 if seed == 0 else 3.0,
        "rescued": seed == 0,
        "worse_than_off": False,
        "actions": ["ModeCollapse:reset_discriminator@1000"],
        "steps": 2000,
        "discarded_steps": 0,
        "search_steps": 0,
        "commit": efficacy.COMMIT,
        "machine": {},
    }


@pytest.fixture
def zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Path, int]]:
    for set_name, case in (("calibration", "a"), ("evaluation", "b")):
        (tmp_path / "zoo" / set_name).mkdir(parents=True, exist_ok=True)
        (tmp_path / "zoo" / set_name / f"{case}.yaml").write_text("{}\n")
    monkeypatch.setattr(efficacy, "ZOO", tmp_path / "zoo")
    monkeypatch.setattr(efficacy, "OUT", tmp_path / "out")
    monkeypatch.setattr(efficacy, "ROWS", tmp_path / "out" / "efficacy.jsonl")
    measured: list[tuple[str, Path, int]] = []

    def measure(
        set_name: str, path: Path, seed: int, earlier: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        measured.append((set_name, path, seed))
        return fake_row(set_name, path, seed)

    monkeypatch.setattr(efficacy, "measure", measure)
    return measured


def test_an_interrupted_study_resumes_without_measuring_a_row_twice(
    zoo: list[tuple[str, Path, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    efficacy.study("evaluation", [], seeds=1, fresh=False)
    assert [(s, p.stem, n) for s, p, n in zoo] == [("evaluation", "b", 0)]
    rows = efficacy.study("all", [], seeds=2, fresh=False)
    assert [(s, p.stem, n) for s, p, n in zoo[1:]] == [
        ("calibration", "a", 0),
        ("calibration", "a", 1),
        ("evaluation", "b", 1),
    ]
    assert [efficacy.key(r) for r in rows] == [
        ("calibration", "a", 0),
        ("calibration", "a", 1),
        ("evaluation", "b", 0),
        ("evaluation", "b", 1),
    ]
    # --again measures only its rows, each once at this commit.
    again = {("evaluation", "b", 1): {**fake_row("evaluation", Path("b.yaml"), 1), "commit": "x"}}
    monkeypatch.setattr(efficacy, "COMMIT", "again")
    efficacy.study("all", [], seeds=2, fresh=False, again=again)
    efficacy.study("all", [], seeds=2, fresh=False, again=again)
    assert [(s, p.stem, n) for s, p, n in zoo[4:]] == [("evaluation", "b", 1)]
    del zoo[4:]
    # Rows of another commit are kept, unless --fresh measures them again.
    monkeypatch.setattr(efficacy, "COMMIT", "other")
    efficacy.study("evaluation", [], seeds=2, fresh=False)
    assert len(zoo) == 4
    efficacy.study("evaluation", [], seeds=2, fresh=True)
    assert [(s, p.stem, n) for s, p, n in zoo[4:]] == [
        ("evaluation", "b", 0),
        ("evaluation", "b", 1),
    ]


def test_the_report_keeps_the_sets_apart_and_names_mixed_commits(tmp_path: Path) -> None:
    rows = [fake_row("calibration", Path("a.yaml"), n) for n in (0, 1)]
    rows += [{**fake_row("evaluation", Path("b.yaml"), 0), "commit": "abc1234"}]
    efficacy_report.write(rows, tmp_path, "def5678")
    text = (tmp_path / "efficacy.md").read_text()
    calibration, evaluation = text.split("## evaluation set")
    assert "Rescued: 1 of 2 (50%; 95% CI 9%-91%)" in calibration
    assert "Rescued: 1 of 1 (100%; 95% CI 21%-100%)" in evaluation
    assert "Warning: these rows come from 2 commit(s)" in text


def test_the_wilson_interval_matches_its_textbook_values() -> None:
    # Wilson (1927), as tabulated by Newcombe (1998), method 3: 81 of 263 -> 0.2553-0.3662.
    low, high = efficacy_report.wilson(81, 263)
    assert round(low, 4) == 0.2553 and round(high, 4) == 0.3662
    assert efficacy_report.wilson(0, 10)[0] == 0.0


def test_a_run_cut_short_writes_no_row() -> None:
    # Seen here: a SIGTERM to the study stopped its in-process trainer gracefully (as in a
    # pod) and the study wrote a row from the truncated runs (auto: no FID at all).
    from bench.closed_loop import LoopResult

    spec = {"training": {"maxSteps": 1200}}
    assert efficacy.complete(LoopResult(steps=1200), spec).steps == 1200
    with pytest.raises(efficacy.InterruptedRunError, match="step 150 of 1200"):
        efficacy.complete(LoopResult(steps=150), spec)


def test_the_report_names_the_runs_the_fault_did_not_hurt(tmp_path: Path) -> None:
    """A rescue where `off` also ended within 10% of healthy is no evidence: said so, and
    the rescued share given without those runs too (here at one seed of a case whose
    fault hurts at the median seed, so the case is admitted)."""
    rows = [fake_row("evaluation", Path("b.yaml"), n) for n in (0, 1)]
    rows += [
        {**fake_row("evaluation", Path("c.yaml"), n), "off": off}
        for n, off in enumerate((7.5, 2.0, 2.0))
    ]
    efficacy_report.write(rows, tmp_path, efficacy.COMMIT)
    text = (tmp_path / "efficacy.md").read_text()
    assert "Rescued: 2 of 5" in text
    assert "`off` too ended within 10% of healthy (no harm to undo at that seed): c (0)" in text
    assert "without them, rescued: 1 of 4" in text
    assert "Not admitted" not in text


def test_a_case_whose_reference_did_not_learn_or_whose_fault_did_not_hurt_is_not_counted() -> None:
    """Seen on the evaluation set: the ring WGAN's healthy reference covers 0 of 8 modes,
    so every run of it was "rescued" (9 of 9), whatever the operator did; and a corrupt
    corpus whose broken run, left alone, ends within 10% of the clean reference. Neither
    case can measure a rescue: both are reported apart, decided on the runs left alone."""

    def rows_of(case: str, **fields: Any) -> list[dict[str, Any]]:
        return [
            {**fake_row("evaluation", Path(f"{case}.yaml"), seed), **fields} for seed in (0, 1, 2)
        ]

    wgan = rows_of("wgan", healthy=0.0, off=0.0, auto=0.0, rescued=True)
    corpus = rows_of(
        "corpus", metric="loss", better="lower", healthy=2.1, off=2.2, auto=2.1, rescued=True
    )
    # 9, 10, 2 of 25 modes; the reference at seed 1 drew an action and ended at 10, but
    # left alone it ends at 1: judged as it ends left alone, a median of 2.
    grid = rows_of("grid", healthy=9.0, off=0.0, auto=9.0, rescued=True)
    grid[1].update(healthy=10.0, healthy_off=1.0, healthy_actions=["ModeCollapse:x@500"])
    grid[2]["healthy"] = 2.0
    ring = rows_of("ring", healthy=8.0, off=2.0, auto=3.0, rescued=False)
    rows = wgan + corpus + grid + ring
    modes: dict[str, int | None] = {"wgan": 8, "grid": 25, "ring": 8, "corpus": None}
    verdicts = admission.admissions(rows, modes)
    assert verdicts["ring"].reason is None
    assert "covers a median 0 of the data's 8 modes" in (verdicts["wgan"].reason or "")
    assert "covers a median 2 of the data's 25 modes" in (verdicts["grid"].reason or "")
    assert "median 2.2, within 10% of the healthy reference's 2.1" in (
        verdicts["corpus"].reason or ""
    )
    text = "\n".join(efficacy_report.set_section("evaluation", rows, modes))
    assert "Rescued: 0 of 3" in text
    assert "Their rows rescued 9 of 9; with them, rescued: 9 of 12" in text
    assert "| wgan † (0) |" in text and "| ring (0) |" in text


def test_the_zoo_names_its_mixtures_modes_as_the_trainer_draws_them() -> None:
    from gentrain_trainer.datasets import toy2d

    assert {
        "ring8": len(toy2d.ring8(0).centers),
        "grid25": len(toy2d.grid25(0).centers),
    } == admission.DATA_MODES
    rows = [
        {"set": "evaluation", "case": "gan-ring-wgan-without-penalty"},
        {"set": "evaluation", "case": "gan-digits-minimax-strong-discriminator"},
        {"set": "calibration", "case": "no-such-case"},
    ]
    assert admission.zoo_modes(rows) == {
        "gan-ring-wgan-without-penalty": 8,
        "gan-digits-minimax-strong-discriminator": None,
        "no-such-case": None,
    }


def test_a_rollbacks_steps_count_as_discarded() -> None:
    """PaLM's case at seed 0: spikes confirmed at 400, the trainer took the rollback to 300
    up at 500 — 200 steps thrown away, which the count of fresh starts alone missed."""
    result = LoopResult(milestones=[{"step": s} for s in (100, 200, 300, 400, 500, 400, 500)])
    assert run_figures.discarded_steps(result, 100) == 200
    restarted = LoopResult(milestones=[{"step": 100}, {"step": 200, "origin_step": 100}])
    assert run_figures.discarded_steps(restarted, 100) == 100


def test_again_measures_only_the_runs_an_action_could_alter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--again`: the `off` run and every run without an action are taken from the earlier
    row (and named so); a run that acted is measured again, and the verdicts follow the
    new figures."""
    case = tmp_path / "b.yaml"
    case.write_text(
        "base: {model: {family: gan}, training: {maxSteps: 10}, checkpoints: {interval: 5}}\n"
        "healthy: {}\nbroken: {training: {learningRate: 1.0}}\n"
        "quality: {metric: modes_covered, better: higher}\n"
    )
    modes: list[str] = []

    def run(spec: dict[str, Any]) -> LoopResult:
        modes.append(spec["remediation"]["mode"])
        return LoopResult(milestones=[{"step": 10, "modes_covered": 8.0}], steps=10, threads=1)

    monkeypatch.setattr(efficacy, "run", run)
    earlier = {**fake_row("evaluation", case, 1), "commit": "abc1234", "healthy_checks": []}
    row = efficacy.measure("evaluation", case, 1, earlier)
    assert modes == ["auto"]  # only the broken spec under `auto`, which had acted
    assert row["taken_from"] == {"healthy": "abc1234", "off": "abc1234"}
    assert (row["healthy"], row["off"], row["auto"]) == (8.0, 2.0, 8.0)
    assert row["rescued"] and row["actions"] == [] and row["commit"] == efficacy.COMMIT

    # A row with no run that acted is not measured again at all: it stays as it was (its
    # commit, its machine); a row measured again names the commit of what it took.
    modes.clear()
    assert efficacy.measure("evaluation", case, 1, row) is row
    assert modes == []
    acted = {**row, "actions": ["NotLearning:cut_lr@5"], "commit": "def5678"}
    again = efficacy.measure("evaluation", case, 1, acted)
    assert again["taken_from"] == {"healthy": "abc1234", "off": "abc1234"}
    assert modes == ["auto"]
    efficacy_report.write([row], tmp_path, efficacy.COMMIT)
    assert (
        "healthy of 1 rows from abc1234, off of 1 rows from abc1234"
        in (tmp_path / "efficacy.md").read_text()
    )


def test_the_report_names_references_noisier_than_the_band_and_judges_by_their_median(
    tmp_path: Path,
) -> None:
    """Seen on the evaluation set: the digits GAN's healthy reference ended at FID 75, 37,
    57, 26, 52, 35 over six seeds, so 'within 10% of healthy' was decided by the seed's
    reference. The report says which cases are that noisy and judges each run against its
    case's median reference too, naming the verdicts that change."""
    fid = {"metric": "fid", "better": "lower", "case": "digits", "off": 90.0}
    rows = [
        {**fake_row("evaluation", Path("digits.yaml"), 0), **fid, "healthy": 26.0, "auto": 37.0},
        {**fake_row("evaluation", Path("digits.yaml"), 1), **fid, "healthy": 52.0, "auto": 50.0},
        {**fake_row("evaluation", Path("digits.yaml"), 2), **fid, "healthy": 35.0, "auto": 38.0},
        {**fake_row("evaluation", Path("ring.yaml"), 0), "healthy": 8.0, "auto": 8.0},
        {**fake_row("evaluation", Path("ring.yaml"), 1), "healthy": 7.5, "auto": 3.0},
    ]
    for r in rows:
        r["rescued"] = efficacy_report.within(r["auto"], r["healthy"], r["better"])
    efficacy_report.write(rows, tmp_path, efficacy.COMMIT)
    text = (tmp_path / "efficacy.md").read_text()
    assert "wider over their seeds than the 10% band: digits (26-52, median 35)." in text
    assert "ring" not in text.split("10% band:")[1].split("\n")[0]
    assert "median reference instead of its own seed's: rescued 3 of 5" in text
    assert "verdicts that change: digits (0) no -> yes, digits (1) yes -> no." in text


def test_a_healthy_run_that_drew_an_action_is_run_left_alone_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = tmp_path / "ring.yaml"
    case.write_text(
        "base: {model: {family: gan}, training: {maxSteps: 10}, checkpoints: {interval: 5}}\n"
        "healthy: {}\nquality: {metric: modes_covered, better: higher}\n"
    )
    modes: list[str] = []

    def run(spec: dict[str, Any]) -> LoopResult:
        mode = spec["remediation"]["mode"]
        modes.append(mode)
        acted = [{"finding": "ModeCollapse", "actions": ["reset_discriminator"], "step": 5}]
        return LoopResult(
            milestones=[{"step": 10, "modes_covered": 7.0 if mode == "auto" else 5.0}],
            findings=[[]],
            remediations=acted if mode == "auto" else [],
            steps=10,
            threads=1,
        )

    monkeypatch.setattr(efficacy, "run", run)
    row = efficacy.measure("evaluation", case, 2, None)
    assert modes == ["auto", "off"]
    assert (row["healthy"], row["healthy_off"]) == (7.0, 5.0)


def test_the_report_says_what_each_healthy_action_was_on() -> None:
    def healthy(
        case: str, seed: int, value: float, acted: bool, alone: float | None
    ) -> dict[str, Any]:
        return {
            "case": case,
            "seed": seed,
            "better": "higher",
            "healthy": value,
            "healthy_actions": ["ModeCollapse:reset_discriminator@4000"] if acted else [],
            **({"healthy_off": alone} if acted else {}),
        }

    rows = [
        healthy("ring", 0, 8.0, False, None),
        healthy("ring", 1, 8.0, False, None),
        healthy("ring", 2, 7.0, True, 5.0),  # left alone it lost 3 of 8: a real fault
        healthy("grid", 0, 10.0, False, None),
        healthy("grid", 1, 9.0, True, 10.0),  # left alone it was fine: a false positive
        healthy("grid", 2, 9.0, True, None),  # a row from before healthy_off
    ]
    lines = efficacy_report.left_alone(rows)
    assert "needed none): 1: grid (1): left alone 10, acted on 9" in lines[0]
    assert "real fault): 1: ring (2): left alone 5, acted on 7, median left alone 8" in lines[1]
    assert "grid (2)" in lines[2]


def test_a_case_is_checked_for_admission_with_both_runs_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import admission_runs

    case = {
        "base": {"model": {"family": "gan"}, "training": {"maxSteps": 10}},
        "healthy": {"training": {"hyperparameters": {"ganLoss": "wgan_gp"}}},
        "broken": {"training": {"hyperparameters": {"gradientPenaltyWeight": 0.0}}},
        "quality": {"metric": "modes_covered", "better": "higher"},
    }
    seen: list[tuple[str, bool]] = []

    def run(spec: dict[str, Any]) -> LoopResult:
        broken = "gradientPenaltyWeight" in spec["training"]["hyperparameters"]
        seen.append((spec["remediation"]["mode"], broken))
        value = 1.0 if broken else 6.0
        return LoopResult(
            milestones=[{"step": 5, "modes_covered": value}, {"step": 10, "modes_covered": value}],
            findings=[[], []],
            steps=10,
        )

    monkeypatch.setattr(admission_runs, "run", run)
    row = admission_runs.left_alone_row("evaluation", "wgan", case, 1)
    assert seen == [("off", False), ("off", True)]
    assert (row["healthy"], row["off"], row["off_by_milestone"]) == (6.0, 1.0, [1.0, 1.0])
    assert admission.admit("wgan", [row], 8).reason is None
    assert "covers a median 6 of the data's 25" in (admission.admit("wgan", [row], 25).reason or "")


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["evaluation", "gan-ring-wgan-without-penalty", "--seeds", "0"],
            "--seeds: 0 runs no seed",
        ),
        (["evaluation", "no-such-case"], "no case 'no-such-case' in the evaluation set"),
    ],
)
def test_admission_runs_refuses_what_it_cannot_run(
    argv: list[str], said: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import admission_runs

    monkeypatch.setattr("sys.argv", ["admission_runs", *argv])
    with pytest.raises(SystemExit) as exited:
        admission_runs.main()
    assert said in f"{exited.value.code}{capsys.readouterr().err}"
    # the study silences the libraries' warnings while it runs and gives logging back: a
    # refusal once left every later test's warnings unlogged (CI's stop 42)
    assert logging.root.manager.disable == logging.NOTSET


def test_the_report_says_whether_the_evaluation_goal_is_met_in_whole_runs() -> None:
    """Seen in session 44: 115 of 144 rescued printed as "80%", the goal's figure, while
    116 were needed. The verdict line counts whole runs, clause by clause."""
    rows = []
    for seed in range(144):
        row = fake_row("evaluation", Path("gan.yaml" if seed < 45 else "vae.yaml"), seed)
        row["family"] = "gan" if seed < 45 else "vae"
        row["rescued"] = seed < 26 or seed >= 45 + 10
        row["auto"] = 8.0 if row["rescued"] else 3.0
        row["worse_than_off"] = seed == 30
        row["healthy_actions"] = ["DiscriminatorOverpowering:lower_discriminator_lr@400"] * (
            seed in (1, 2)
        )
        rows.append(row)
    assert sum(r["rescued"] for r in rows) == 115
    line = efficacy_report.evaluation_goal(rows, rows, rows)
    assert line.startswith("Goal: rescued 115 of 144, 116 needed for 80%: **not met**;")
    assert "every family at 60% or more: **not met** (gan 26 of 45, 27 needed);" in line
    assert "on no run: **not met** (1 run);" in line
    assert line.endswith("50 healthy runs: met (2 in 144 runs, 2 allowed).")
    text = "\n".join(efficacy_report.set_section("evaluation", rows))
    assert line in text
    rows[26]["rescued"] = True
    rows[30]["worse_than_off"] = False
    assert efficacy_report.evaluation_goal(rows, rows, rows).startswith(
        "Goal: rescued 116 of 144, 116 needed for 80%: met; every family at 60% or more: met;"
    )
