"""The health report, from a job whose status the milestone step filled in."""

from __future__ import annotations

import json
from pathlib import Path

from gentrain_operator import report
from tests.support.policy_runs import gan_job, ring, run_milestones


def test_the_report_tells_the_story_of_a_remediated_job(tmp_path: Path) -> None:
    job, _ = run_milestones(
        gan_job(),
        [ring(250, 5), ring(500, 5), ring(750, 7, generation=5), ring(1000, 8, generation=5)],
    )
    job["status"].update({"phase": "Succeeded", "step": 1000})
    data = report.write(job, tmp_path)
    assert data["remediations"][0]["finding"] == "ModeCollapse"
    assert data["remediations"][0]["outcome"] == "resolved"
    assert data["before"]["modes_covered"] == 5 and data["after"]["modes_covered"] == 8
    text = (tmp_path / "report.md").read_text()
    assert "### r1 at step 500: ModeCollapse" in text
    assert "`discriminatorLearningRate` 0.001 → 0.0005" in text
    assert "![losses and remediations](losses.png)" in text
    assert (tmp_path / "losses.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "summary.json").read_text())["job"] == "n/g"
