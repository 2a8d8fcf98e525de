"""The chart's three Grafana dashboards — the fleet, one job's training health, one job's
GPUs — built with Grafana's typed builders; each panel named for the finding it feeds."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard as builder
from grafana_foundation_sdk.builders import prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos, VariableRefresh

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
# The trainer's series of the selected job (the PodMonitor labels them namespace and gtj).
JOB = '{namespace="$namespace", gtj="$job"}'
# dcgm-exporter's series of the selected job's trainer pods: it labels GPUs with the pod
# that holds them (namespace, pod); the trainer's own series say which pods are the job's.
JOBS_PODS = f"and on (namespace, pod) gentrain_step{JOB}"


def growth(series: str, window: str) -> str:
    """How much an operator counter grew in the window, its first increment included (the
    chart's gentrain.growth: a job's series is born at 1, which increase() never counts)."""
    return f"({series} unless {series} offset {window}) or increase({series}[{window}])"


def panel(
    title: str, queries: list[tuple[str, str]], x: int, y: int, unit: str = "short"
) -> timeseries.Panel:
    built = (
        timeseries.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .grid_pos(GridPos(h=8, w=12, x=x, y=y))
        .unit(unit)
    )
    for i, (promql, legend) in enumerate(queries):
        built = built.with_target(
            prometheus.Dataquery().expr(promql).legend_format(legend).ref_id(chr(65 + i))
        )
    return built


def dashboard(
    uid: str, title: str, panels: list[timeseries.Panel], job_variables: bool
) -> dict[str, Any]:
    board = (
        builder.Dashboard(title)
        .uid(uid)
        .tags(["gentrain"])
        .time("now-6h", "now")
        .refresh("30s")
        .with_variable(builder.DatasourceVariable("datasource").type("prometheus"))
    )
    if job_variables:
        board = board.with_variable(
            builder.QueryVariable("namespace")
            .datasource(DATASOURCE)
            .query("label_values(gentrain_step, namespace)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        ).with_variable(
            builder.QueryVariable("job")
            .label("job")
            .datasource(DATASOURCE)
            .query('label_values(gentrain_step{namespace="$namespace"}, gtj)')
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        )
    # On a job's dashboards, only that job's remediations.
    selector = (
        '{mode="auto", namespace="$namespace", gtj="$job"}' if job_variables else '{mode="auto"}'
    )
    board = board.annotation(
        builder.AnnotationQuery()
        .name("Remediations")
        .enable(True)
        .icon_color("red")
        .datasource(DATASOURCE)
        .expr(f"changes(gentrain_operator_remediations_total{selector}[2m]) > 0")
    )
    for p in panels:
        board = board.with_panel(p)
    encoded: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(board.build()))
    # Grafana's Prometheus annotations also take title and text templates, which the
    # generic annotation schema does not list.
    encoded["annotations"]["list"][0].update(
        {"titleFormat": "{{finding}}: {{action}}", "textFormat": "{{namespace}}/{{gtj}}"}
    )
    return encoded


def fleet() -> dict[str, Any]:
    return dashboard(
        "gentrain-fleet",
        "gentrain / fleet",
        [
            panel("Jobs by phase", [("sum by (phase) (gentrain_operator_jobs)", "{{phase}}")], 0, 0),
            panel(
                "Unhealthy jobs",
                [
                    ("count(gentrain_operator_job_healthy == 0) or vector(0)", "unhealthy"),
                    ("count(gentrain_operator_job_remediation_exhausted == 1) or vector(0)", "exhausted"),
                ],
                12,
                0,
            ),
            panel(
                "Findings per hour",
                [(f"sum by (finding) ({growth('gentrain_operator_findings_total', '1h')})", "{{finding}}")],
                0,
                8,
            ),
            panel(
                "Remediations per hour",
                [
                    (
                        f"sum by (finding, action) ({growth('gentrain_operator_remediations_total', '1h')})",
                        "{{finding}} → {{action}}",
                    )
                ],
                12,
                8,
            ),
            panel(
                "Scrape errors",
                [("sum by (reason) (rate(gentrain_operator_scrape_errors_total[5m]))", "{{reason}}")],
                0,
                16,
            ),
            panel(
                "Milestone to decision (p90)",
                [
                    (
                        "histogram_quantile(0.9, sum by (le) "
                        "(rate(gentrain_operator_milestone_latency_seconds_bucket[10m])))",
                        "p90",
                    )
                ],
                12,
                16,
                unit="s",
            ),
        ],
        job_variables=False,
    )  # fmt: skip


def job() -> dict[str, Any]:
    return dashboard(
        "gentrain-job",
        "gentrain / job",
        [
            panel("Losses (smoothed)", [(f"gentrain_loss{JOB}", "{{component}}")], 0, 0),
            panel(
                "Milestone loss: mean and max",
                [
                    (f"gentrain_milestone_loss_mean{JOB}", "mean {{component}}"),
                    (f"gentrain_milestone_loss_max{JOB}", "max {{component}}"),
                ],
                12,
                0,
            ),
            panel(
                "FID / KID",
                [
                    (f"gentrain_milestone_fid{JOB}", "FID ({{extractor}})"),
                    (f"gentrain_milestone_kid{JOB}", "KID ({{extractor}})"),
                ],
                0,
                8,
            ),
            panel(
                "Diversity",
                [
                    (f"gentrain_milestone_modes_covered{JOB}", "modes covered"),
                    (f"gentrain_milestone_high_quality_ratio{JOB}", "high-quality ratio"),
                    (f"gentrain_milestone_recall{JOB}", "recall"),
                    (f"gentrain_milestone_active_units{JOB}", "active units"),
                    (
                        f"gentrain_milestone_attention_entropy_ratio{JOB}",
                        "attention entropy / uniform",
                    ),
                ],
                12,
                8,
            ),
            panel(
                "Gradient norms",
                [
                    (f"gentrain_grad_norm{JOB}", "{{component}}"),
                    (f"gentrain_milestone_grad_norm_max{JOB}", "window max {{component}}"),
                ],
                0,
                16,
            ),
            panel(
                "Learning rates and hyperparameters",
                [
                    (f"gentrain_learning_rate{JOB}", "lr {{component}}"),
                    (f"gentrain_hyperparameter{JOB}", "{{name}}"),
                ],
                12,
                16,
            ),
            panel(
                "Step time: data vs compute",
                [
                    (f"gentrain_step_data_seconds{JOB}", "data"),
                    (f"gentrain_step_compute_seconds{JOB}", "compute"),
                ],
                0,
                24,
                unit="s",
            ),
            panel(
                "Validation loss",
                [
                    (f"gentrain_milestone_validation_loss{JOB}", "validation"),
                    (f"gentrain_milestone_kl{JOB}", "KL"),
                ],
                12,
                24,
            ),
            # What the rules read beside the losses: a finding in the job's status names
            # one of these figures, and here is its history.
            panel(
                "Update ratio: a step's update over the weights, window median (NotLearning)",
                [(f"gentrain_milestone_update_ratio{JOB}", "{{component}}")],
                0,
                32,
                unit="percentunit",
            ),
            panel(
                "Weight growth: weight norm over its initial norm (WeightGrowth)",
                [(f"gentrain_milestone_weight_growth{JOB}", "{{component}}")],
                12,
                32,
            ),
            panel(
                "GAN: discriminator accuracy on real and fake samples (DiscriminatorOverpowering)",
                [(f"gentrain_milestone_discriminator_accuracy_ratio{JOB}", "accuracy ratio")],
                0,
                40,
            ),
            panel(
                "GAN: critic input-gradient norm, about 1 under WGAN-GP's penalty "
                "(UnconstrainedCritic)",
                [(f"gentrain_milestone_critic_gradient_norm{JOB}", "critic gradient norm")],
                12,
                40,
            ),
            panel(
                "VAE: reconstruction against the latent-free decoder's (PosteriorCollapse)",
                [
                    (f"gentrain_milestone_reconstruction_loss{JOB}", "reconstruction"),
                    (
                        f"gentrain_milestone_reconstruction_baseline{JOB}",
                        "latent-free decoder",
                    ),
                ],
                0,
                48,
            ),
            panel(
                "KL weight; share of the EMA weights still at initialisation (StaleEMA)",
                [
                    (f"gentrain_milestone_kl_weight{JOB}", "KL weight"),
                    (f"gentrain_milestone_ema_init_weight{JOB}", "EMA share at initialisation"),
                ],
                12,
                48,
            ),
            panel(
                "Loss spikes and non-finite losses since the start (LossSpike, NonFiniteLoss)",
                [
                    (f"gentrain_milestone_loss_spikes_since_start{JOB}", "spikes {{component}}"),
                    (f"gentrain_milestone_nonfinite_losses_since_start{JOB}", "non-finite"),
                ],
                0,
                56,
            ),
        ],
        job_variables=True,
    )


def gpu() -> dict[str, Any]:
    """The trainer's own GPU figures (NVML), and dcgm-exporter's where the cluster runs it
    (GPU clusters do): the same quantities, plus the XID errors only DCGM reports."""
    return dashboard(
        "gentrain-gpu",
        "gentrain / GPUs",
        [
            panel(
                "Utilisation",
                [
                    (f"gentrain_gpu_utilization_ratio{JOB}", "GPU {{gpu}}"),
                    (f"DCGM_FI_DEV_GPU_UTIL / 100 {JOBS_PODS}", "GPU {{gpu}} (DCGM)"),
                ],
                0,
                0,
                unit="percentunit",
            ),
            panel(
                "Memory",
                [
                    (f"gentrain_gpu_memory_used_bytes{JOB}", "used {{gpu}}"),
                    (f"gentrain_gpu_memory_total_bytes{JOB}", "total {{gpu}}"),
                    # DCGM reports frame-buffer MiB.
                    (f"DCGM_FI_DEV_FB_USED * 1048576 {JOBS_PODS}", "used {{gpu}} (DCGM)"),
                    (
                        f"(DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE) * 1048576 {JOBS_PODS}",
                        "total {{gpu}} (DCGM)",
                    ),
                ],
                12,
                0,
                unit="bytes",
            ),
            panel("Power", [(f"gentrain_gpu_power_watts{JOB}", "GPU {{gpu}}")], 0, 8, unit="watt"),
            panel(
                "Temperature",
                [(f"gentrain_gpu_temperature_celsius{JOB}", "GPU {{gpu}}")],
                12,
                8,
                unit="celsius",
            ),
            panel(
                "XID errors (DCGM: the last error code, 0 when none)",
                [(f"DCGM_FI_DEV_XID_ERRORS {JOBS_PODS}", "GPU {{gpu}}")],
                0,
                16,
            ),
        ],
        job_variables=True,
    )
