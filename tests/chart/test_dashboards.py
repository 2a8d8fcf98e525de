"""The chart's Grafana dashboards: what scripts/grafana builds with Grafana's typed
builders is what the chart ships, and the GPU panels' dcgm-exporter queries pick the
selected job's GPUs (promtool, on synthetic series as dcgm-exporter labels them)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from scripts import grafana
from scripts.grafana import dashboards
from tests.chart.test_chart import CHART, promtool_test


def test_the_shipped_dashboards_are_what_the_builders_make() -> None:
    for name, board in grafana.build().items():
        shipped = json.loads((CHART / "files" / name).read_text())
        assert shipped == board, f"{name}: run .venv/bin/python -m scripts.grafana"


def test_every_panel_has_a_datasource_a_position_and_a_query() -> None:
    for name, board in grafana.build().items():
        if not name.startswith("dashboards/"):
            continue
        assert board["schemaVersion"] >= 39, name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}", (name, panel["title"])
            assert set(panel["gridPos"]) == {"h", "w", "x", "y"}, (name, panel["title"])
            assert all(t["expr"] and t["refId"] for t in panel["targets"]), (name, panel["title"])


def test_the_gpu_panels_read_dcgm_exporter_for_the_selected_jobs_pods_only(
    tmp_path: Path,
) -> None:
    board = dashboards.gpu()
    selected = {"$namespace": "ml", "$job": "big"}
    dcgm = {}
    for panel in board["panels"]:
        for target in panel["targets"]:
            if "DCGM_" in target["expr"]:
                expr = target["expr"]
                for variable, value in selected.items():
                    expr = expr.replace(variable, value)
                dcgm[panel["title"].split(" ")[0]] = expr
    assert set(dcgm) == {"Utilisation", "Memory", "XID"}, dcgm
    # dcgm-exporter's labels (with pod mapping): the GPU's pod, not the training job; the
    # trainer's own series join the pod to its job. Two jobs, one GPU each.
    gpu = 'gpu="0",UUID="GPU-1",Hostname="n1",container="trainer"'
    series = [
        (f'DCGM_FI_DEV_GPU_UTIL{{{gpu},namespace="ml",pod="big-trainer-1"}}', "87x5"),
        (f'DCGM_FI_DEV_GPU_UTIL{{{gpu},namespace="ml",pod="small-trainer-1"}}', "12x5"),
        (f'DCGM_FI_DEV_FB_USED{{{gpu},namespace="ml",pod="big-trainer-1"}}', "30000x5"),
        (f'DCGM_FI_DEV_FB_FREE{{{gpu},namespace="ml",pod="big-trainer-1"}}', "10000x5"),
        (f'DCGM_FI_DEV_XID_ERRORS{{{gpu},namespace="ml",pod="big-trainer-1"}}', "0 0 79 79 79 79"),
        ('gentrain_step{namespace="ml",gtj="big",pod="big-trainer-1",job="ml/trainers"}', "1+10x5"),
        ('gentrain_step{namespace="ml",gtj="small",pod="small-trainer-1",job="ml/trainers"}', "1+10x5"),
    ]  # fmt: skip
    # promtool's expected labels, as a series selector.
    labels = f'{{{gpu},namespace="ml",pod="big-trainer-1"}}'
    tests = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "promql_expr_test": [
                    {"expr": dcgm["Utilisation"], "eval_time": "4m",
                     "exp_samples": [{"labels": labels, "value": 0.87}]},
                    {"expr": dcgm["XID"], "eval_time": "4m",
                     "exp_samples": [{"labels": f"DCGM_FI_DEV_XID_ERRORS{labels}", "value": 79}]},
                ],
            }
        ],
    }  # fmt: skip
    memory = [e.strip() for e in dcgm["Memory"].split(" and on ")]
    assert memory[0].startswith("(DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)"), memory
    tests["tests"][0]["promql_expr_test"].append(
        {"expr": dcgm["Memory"], "eval_time": "4m",
         "exp_samples": [{"labels": labels, "value": 40000 * 1048576}]}
    )  # fmt: skip
    (tmp_path / "dcgm-test.yaml").write_text(yaml.safe_dump(tests))
    promtool_test(tmp_path, "dcgm-test.yaml")


def test_the_dashboards_count_counters_as_the_alerts_do() -> None:
    """scripts/grafana/dashboards.py's growth() is the chart's gentrain.growth, written twice (a
    Python builder, a Helm helper): each alert rendered by the chart is the builder's text."""
    from tests.chart.test_chart_monitoring import monitoring_objects

    rules = monitoring_objects()["PrometheusRule"]["spec"]["groups"][0]["rules"]
    storm = next(r for r in rules if r["alert"] == "RemediationStorm")["expr"]
    series = 'gentrain_operator_remediations_total{mode="auto",finding!="LearningRateCheck"}'
    built = dashboards.growth(series, "1h")
    assert f"sum by (namespace, gtj) ({built}) >" in storm


# Figures the diagnosis reads that the job dashboard need not plot, and why.
NOT_PLOTTED = {
    "modes": "the data's mode count, a constant: the scale of modes covered",
    "latent_dims": "the latent's size, a constant: the scale of active units",
    "perplexity": "the exponential of the validation loss, which is plotted",
    "steps_per_second": "the step time panel plots where a step's time goes",
}


def test_every_figure_the_diagnosis_reads_is_on_the_job_dashboard() -> None:
    """A user who sees a finding in the job's status should find the figure it was read
    from on the job's dashboard (session 44: the critic's gradient norm, the update ratio
    and the weight growth, each the input of a rule, were on no panel)."""
    from gentrain_operator import snapshot

    queried = " ".join(
        target["expr"] for panel in dashboards.job()["panels"] for target in panel["targets"]
    )
    read = (*snapshot.FIGURES, "update_ratio", "weight_growth", "loss_spikes_since_start")
    missing = [
        name
        for name in read
        if name not in NOT_PLOTTED and f"gentrain_milestone_{name}{{" not in queried
    ]
    assert not missing, f"on no panel of the job dashboard: {missing}"
