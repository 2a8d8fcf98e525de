"""The learning-rate range test on a program's own torch model (gentrain_sdk.rate_search,
the one the built-in trainer runs on its families): from a rate far too high it picks a
smaller one, it trains no step of the run (weights, optimizer state and rates put back),
and through a Reporter the search reaches the milestone the operator reads and adopts."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch's own convention)
import yaml

from gentrain_contract.commands import CommandSpec
from gentrain_operator import snapshot, trainer_config
from gentrain_sdk import Reporter, rate_search


def regression(rate: float) -> tuple[torch.nn.Module, torch.optim.Optimizer, list[Any]]:
    torch.manual_seed(0)
    inputs = torch.randn(25 * 64, 8)
    targets = torch.sin(inputs @ torch.randn(8, 1) / 2)
    model = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=rate)
    batches = list(zip(inputs.split(64), targets.split(64), strict=True))
    return model, optimizer, batches


def loss_of(model: torch.nn.Module) -> Any:
    return lambda batch: F.mse_loss(model(batch[0]), batch[1])


def test_a_far_too_high_rate_is_searched_down_and_the_run_is_left_as_it_was() -> None:
    model, optimizer, batches = regression(0.001)
    for batch in batches[:3]:  # some optimizer state to put back
        optimizer.zero_grad()
        loss_of(model)(batch).backward()
        optimizer.step()
    optimizer.param_groups[0]["lr"] = 3.0  # Adam: 0.003 fits this well
    weights = copy.deepcopy(model.state_dict())
    state = copy.deepcopy(optimizer.state_dict())
    result = rate_search.search_torch(model, optimizer, loss_of(model), batches)
    assert list(result.losses) == list(rate_search.FACTORS)
    assert result.factor <= 0.03, result.losses  # 3.0 -> 0.09 or below
    winner = min(result.losses, key=result.losses.__getitem__)
    assert result.losses[winner] < 0.5 * result.losses[1.0]
    assert result.factor == rate_search.choose(result.losses)  # it, or up to the next one
    assert result.trained_steps == 25 * len(rate_search.FACTORS)
    for name, value in model.state_dict().items():
        assert torch.equal(value, weights[name]), name
    assert optimizer.param_groups[0]["lr"] == 3.0
    assert torch.equal(optimizer.state_dict()["state"][0]["exp_avg"], state["state"][0]["exp_avg"])


def test_a_rate_a_hundred_times_too_low_is_searched_beyond_the_range() -> None:
    """x10 wins, so the range had not bracketed the best rate: x30 and x100 are tried
    too, and one of them is taken."""
    model, optimizer, batches = regression(0.00003)  # Adam: 0.003 fits this well
    result = rate_search.search_torch(model, optimizer, loss_of(model), batches)
    assert list(result.losses) == [*rate_search.FACTORS, *rate_search.BEYOND]
    assert result.factor in rate_search.BEYOND, result.losses
    assert result.trained_steps == 25 * (len(rate_search.FACTORS) + len(rate_search.BEYOND))
    assert optimizer.param_groups[0]["lr"] == 0.00003  # put back


@pytest.mark.parametrize(
    ("losses", "chosen", "extended"),
    [
        ({10.0: 1.0, 1.0: 2.0, 0.1: 3.0}, 10.0, (30.0, 100.0)),  # the top won
        ({10.0: 2.0, 1.0: 1.0, 0.1: 3.0}, 1.0, ()),  # bracketed
        ({10.0: 1.0, 30.0: 0.5, 100.0: 0.7}, 30.0, ()),  # extended once already
        ({1.0: 1.0, 0.1: 2.0}, 1.0, ()),  # the top is x1: nothing above was asked
    ],
)
def test_the_range_is_extended_only_when_its_largest_candidate_wins(
    losses: dict[float, float], chosen: float, extended: tuple[float, ...]
) -> None:
    assert rate_search.beyond(losses, chosen) == extended


def test_a_search_bounded_above_tries_and_chooses_no_rate_over_its_bound() -> None:
    """The operator bounds a search where the weights' growth says the rate is too high
    by at least so much (max_factor): x10 would win here, and is never tried."""
    model, optimizer, batches = regression(0.00003)  # Adam: 0.003 fits this well
    result = rate_search.search_torch(model, optimizer, loss_of(model), batches, max_factor=0.5)
    # The bound is a candidate too: the largest rate it allows.
    assert list(result.losses) == [0.5, 0.3, 0.1, 0.03, 0.01, 0.003]
    assert result.factor == 0.5
    assert rate_search.within(rate_search.FACTORS, 0.3) == (0.3, 0.1, 0.03, 0.01, 0.003)
    assert rate_search.within(rate_search.FACTORS, 0.001) == (0.003,)  # the smallest
    assert rate_search.within(rate_search.FACTORS, None) == rate_search.FACTORS
    assert rate_search.beyond({10.0: 1.0, 1.0: 2.0}, 10.0, max_factor=50.0) == (30.0,)


def test_a_candidate_that_diverges_scores_infinite() -> None:
    assert rate_search.tail_mean([1.0, 2.0, math.nan]) == math.inf
    assert rate_search.tail_mean([4.0, 3.0, 2.0, 1.0, 1.0, 1.0]) == 1.0
    with pytest.raises(ValueError, match="no batches"):
        model, optimizer, _ = regression(1.0)
        rate_search.search_torch(model, optimizer, loss_of(model), [])


def test_a_search_handlers_result_reaches_the_milestone_the_operator_reads(
    tmp_path: Path,
) -> None:
    model, optimizer, batches = regression(3.0)
    config = tmp_path / "config.yaml"
    spec: dict[str, Any] = {
        "model": {"family": "custom"},
        "training": {"maxSteps": 100, "hyperparameters": {"learningRate": 3.0}},
        "commands": [{"id": "r1-search", "action": "search_learning_rate"}],
    }
    config.write_text(yaml.safe_dump(trainer_config.render(spec, 2)))
    reporter = Reporter(0, config=config)

    def search(command: CommandSpec) -> rate_search.SearchResult:
        assert command.search_steps == 25
        found = rate_search.search_torch(model, optimizer, loss_of(model), batches)
        for group in optimizer.param_groups:
            group["lr"] *= found.factor
        return found

    reporter.on_command("search_learning_rate", search)
    assert "search_learning_rate" in reporter.supports
    reporter.step(10, 1.0)
    reporter.milestone(10)
    record = snapshot.milestone(snapshot.parse(reporter.exposition(), 0.0))
    assert record is not None
    searched = record["learning_rate_search"]
    assert searched["factor"] == pytest.approx(optimizer.param_groups[0]["lr"] / 3.0)
    assert searched["factor"] <= 0.03
    assert searched["steps"] == 25 * len(rate_search.FACTORS)
    reporter.step(20, 1.0)
    reporter.milestone(20)
    again = snapshot.milestone(snapshot.parse(reporter.exposition(), 0.0))
    assert again is not None and "learning_rate_search" not in again  # reported once


def held_out_of(rate: float) -> tuple[torch.nn.Module, torch.optim.Optimizer, list[Any], list[Any]]:
    """The regression at `rate`, three steps in, and held-out batches of the same task."""
    model, optimizer, batches = regression(rate)
    torch.manual_seed(1)
    inputs = torch.randn(4 * 64, 8)
    # The same target function: regression() draws its weights right after its inputs.
    torch.manual_seed(0)
    torch.randn(25 * 64, 8)
    weights = torch.randn(8, 1)
    held_out = list(zip(inputs.split(64), torch.sin(inputs @ weights / 2).split(64), strict=True))
    for batch in batches[:3]:
        optimizer.zero_grad()
        loss_of(model)(batch).backward()
        optimizer.step()
    return model, optimizer, batches, held_out


def test_a_rate_check_moves_a_rate_far_too_low_up_and_leaves_the_run_as_it_was() -> None:
    """The rate check (`probe_learning_rate`) on a program's own model: the rate in force
    and ten times it, from the run's weights, judged on held-out batches; x10 wins
    clearly, so x100 is tried too (Adam fits this at 0.003)."""
    model, optimizer, batches, held_out = held_out_of(0.00003)
    weights = copy.deepcopy(model.state_dict())
    state = copy.deepcopy(optimizer.state_dict())
    model.eval()  # left as the framework's evaluation left it
    result = rate_search.probe_torch(model, optimizer, loss_of(model), batches, held_out)
    assert list(result.losses) == [*rate_search.PROBE_FACTORS, *rate_search.PROBE_BEYOND]
    assert result.factor == 100.0, result.losses
    assert result.losses[100.0] < 0.8 * result.losses[1.0]
    assert result.trained_steps == 25 * 3
    for name, value in model.state_dict().items():
        assert torch.equal(value, weights[name]), name
    assert optimizer.param_groups[0]["lr"] == 0.00003
    assert torch.equal(optimizer.state_dict()["state"][0]["exp_avg"], state["state"][0]["exp_avg"])
    assert not model.training


def test_a_rate_check_keeps_a_rate_that_trains_well() -> None:
    """At 0.03 this model trains well; ten times that does worse on held-out data."""
    model, optimizer, batches, held_out = held_out_of(0.03)
    result = rate_search.probe_torch(model, optimizer, loss_of(model), batches, held_out)
    assert list(result.losses) == list(rate_search.PROBE_FACTORS)
    assert result.losses[10.0] > result.losses[1.0]
    assert result.factor == 1.0
    assert optimizer.param_groups[0]["lr"] == 0.03


def test_a_rate_check_is_judged_on_the_held_out_batches_it_is_given() -> None:
    """Each candidate's figure is the mean loss over the held-out batches after its steps,
    with the same random state for every candidate: the rate in force, computed here
    by training it by hand, gives the same figure."""
    model, optimizer, batches, held_out = held_out_of(0.003)
    result = rate_search.probe_torch(model, optimizer, loss_of(model), batches, held_out)
    for batch in batches:
        optimizer.zero_grad()
        loss_of(model)(batch).backward()
        optimizer.step()
    with torch.no_grad():
        by_hand = sum(float(loss_of(model)(batch)) for batch in held_out) / len(held_out)
    assert result.losses[1.0] == pytest.approx(by_hand, rel=1e-6)
    with pytest.raises(ValueError, match="no held-out batches"):
        rate_search.probe_torch(model, optimizer, loss_of(model), batches, [])
