"""A loss spike counts wherever it falls in a milestone window. Each window used to be
judged on its own steps only, its first SPIKE_CONTEXT steps (50) having no context: a
spike there was never counted, and at an interval of 50 or less no spike ever was (found
by bench/zoo/calibration/transformer-corrupt-stretches.yaml: a stretch of garbage read
at step ~430 reached a loss of 9.7 against ~2.3, and its window reported no spike)."""

from __future__ import annotations

from gentrain_sdk.window import SPIKE_CONTEXT, Window


def losses(n: int, start: float = 2.0) -> list[float]:
    """A slowly falling loss with a little step-to-step noise."""
    return [start - 0.001 * i + 0.02 * ((i * 7919) % 13 - 6) / 6 for i in range(n)]


def fill(window: Window, values: list[float]) -> None:
    for value in values:
        window.add({"model": value}, {}, {}, {}, 0.0, 0.01)


def spikes(window: Window) -> float:
    return float(window.summary()["components"]["model"]["loss_spikes"])


def test_a_spike_early_in_a_window_counts() -> None:
    window = Window()
    fill(window, losses(100))
    assert spikes(window) == 0
    window.reset()  # a milestone: a new window
    noisy = losses(100, start=1.9)
    noisy[10] = 9.7  # step 10 of the window, as the corrupt stretch's first batch
    fill(window, noisy)
    assert spikes(window) == 1


def test_short_windows_still_count_spikes() -> None:
    window = Window()
    found = 0.0
    for w in range(6):  # 20-step windows: shorter than the context
        window.reset()
        values = losses(20, start=2.0 - 0.02 * w)
        if w == 4:
            values[5] = 9.7
        fill(window, values)
        found += spikes(window)
    assert found == 1


def test_new_weights_are_not_compared_with_the_old_ones_losses() -> None:
    """After a fresh start the loss is back at its initial level: no spike."""
    window = Window()
    fill(window, losses(2 * SPIKE_CONTEXT))
    window.forget()  # a fresh start or a rollback
    fill(window, [5.5 - 0.01 * i for i in range(2 * SPIKE_CONTEXT)])
    assert spikes(window) == 0
