{{/* The training-health alerts, as a list of Prometheus alerting rules: the chart's
PrometheusRule carries them, and the Grafana-managed rules (grafana-alerts.yaml) are made
from the same list, so the two can never disagree. */}}
{{- define "gentrain.alertRules" -}}
{{- $a := .Values.alerts }}
{{- if include "gentrain.enabledAlert" (dict "root" . "name" "TrainingDiverged") | eq "true" }}
- alert: TrainingDiverged
  expr: sum by (namespace, gtj) ({{ include "gentrain.growth" (dict "series" `gentrain_operator_findings_total{finding=~"NonFiniteLoss|Divergence|NotLearning|AttentionCollapse"}` "window" "15m") }}) > 0
  labels: {severity: critical}
  annotations:
    summary: "Training of {{`{{ $labels.namespace }}/{{ $labels.gtj }}`}} diverged or learns nothing (NaN loss, runaway loss, a loss still at what a model that learned nothing scores, or a transformer's attention collapsed)."
    description: "The operator raised NonFiniteLoss, Divergence, NotLearning or AttentionCollapse on {{`{{ $labels.namespace }}/{{ $labels.gtj }}`}} at {{`{{ $value | humanize }}`}} milestones in the last 15 minutes. In mode auto it rolls back or starts afresh at a lower rate; `kubectl describe gtj` shows the evidence and what was done."
    runbook_url: {{ $a.runbookURL }}#trainingdiverged
{{- end }}
{{- if include "gentrain.enabledAlert" (dict "root" . "name" "ModeCollapseSuspected") | eq "true" }}
- alert: ModeCollapseSuspected
  expr: sum by (namespace, gtj) ({{ include "gentrain.growth" (dict "series" `gentrain_operator_findings_total{finding="ModeCollapse"}` "window" "30m") }}) >= 2
  labels: {severity: warning}
  annotations:
    summary: "GAN {{`{{ $labels.namespace }}/{{ $labels.gtj }}`}} covers fewer modes at two milestones."
    description: "ModeCollapse was found on {{`{{ $labels.namespace }}/{{ $labels.gtj }}`}} at {{`{{ $value | humanize }}`}} milestones in 30 minutes: the generator covers fewer of the data's modes."
    runbook_url: {{ $a.runbookURL }}#modecollapsesuspected
{{- end }}
{{- if include "gentrain.enabledAlert" (dict "root" . "name" "FIDRegressing") | eq "true" }}
- alert: FIDRegressing
  expr: sum by (namespace, gtj) ({{ include "gentrain.growth" (dict "series" `gentrain_operator_findings_total{finding="FIDRegression",severity!="info"}` "window" "1h") }}) > 0
  labels: {severity: warning}
  annotations:
    summary: "FID of {{`{{ $labels.namespace }}/{{ $labels.gtj }}`}} rose above its best."
    description: "FIDRegression was found on {{`{{ $labels.namespace }}/{{ $labels.gtj }}`}}: the sample quality (FID) rose above its best by more than its measurement noise at two milestones in a row."
    runbook_url: {{ $a.runbookURL }}#fidregressing
{{- end }}
{{- if include "gentrain.enabledAlert" (dict "root" . "name" "RemediationExhausted") | eq "true" }}
- alert: RemediationExhausted
  expr: max by (namespace, gtj) (gentrain_operator_job_remediation_exhausted) == 1
  labels: {severity: critical}
  annotations:
    summary: "No remediation left for {{`{{ $labels.namespace }}/{{ $labels.gtj }}`}}."
    description: "Every remediation for the current finding of {{`{{ $labels.namespace }}/{{ $labels.gtj }}`}} was tried, or spec.remediation.maxActions was reached; the operator only records findings now."
    runbook_url: {{ $a.runbookURL }}#remediationexhausted
{{- end }}
{{- if include "gentrain.enabledAlert" (dict "root" . "name" "RemediationStorm") | eq "true" }}
- alert: RemediationStorm
  expr: sum by (namespace, gtj) ({{ include "gentrain.growth" (dict "series" `gentrain_operator_remediations_total{mode="auto",finding!="LearningRateCheck"}` "window" "1h") }}) > {{ $a.remediationStormPerHour }}
  labels: {severity: warning}
  annotations:
    summary: "{{`{{ $labels.namespace }}/{{ $labels.gtj }}`}} was remediated more than {{ $a.remediationStormPerHour }} times in an hour."
    description: "{{`{{ $labels.namespace }}/{{ $labels.gtj }}`}} drew {{`{{ $value | humanize }}`}} automatic remediations in the last hour (threshold {{ $a.remediationStormPerHour }})."
    runbook_url: {{ $a.runbookURL }}#remediationstorm
{{- end }}
{{- if include "gentrain.enabledAlert" (dict "root" . "name" "TrainerMetricsStale") | eq "true" }}
- alert: TrainerMetricsStale
  expr: max by (namespace, gtj) (gentrain_operator_metrics_age_seconds) > {{ $a.metricsStaleSeconds }}
  labels: {severity: warning}
  annotations:
    summary: "No fresh metrics from the trainer of {{`{{ $labels.namespace }}/{{ $labels.gtj }}`}}."
    description: "The newest metrics the operator read from the trainer of {{`{{ $labels.namespace }}/{{ $labels.gtj }}`}} are {{`{{ $value | humanize }}`}}s old (threshold {{ $a.metricsStaleSeconds }}s). Nothing is diagnosed on stale metrics."
    runbook_url: {{ $a.runbookURL }}#trainermetricsstale
{{- end }}
{{- if include "gentrain.enabledAlert" (dict "root" . "name" "CheckpointStale") | eq "true" }}
- alert: CheckpointStale
  expr: max by (namespace, gtj) (gentrain_operator_checkpoint_age_seconds) > {{ $a.checkpointStaleSeconds }}
  labels: {severity: warning}
  annotations:
    summary: "{{`{{ $labels.namespace }}/{{ $labels.gtj }}`}} has not reached a checkpoint for a long time."
    description: "The last checkpoint milestone of {{`{{ $labels.namespace }}/{{ $labels.gtj }}`}} was {{`{{ $value | humanize }}`}}s ago (threshold {{ $a.checkpointStaleSeconds }}s)."
    runbook_url: {{ $a.runbookURL }}#checkpointstale
{{- end }}
{{- if include "gentrain.enabledAlert" (dict "root" . "name" "GPUUnderutilized") | eq "true" }}
- alert: GPUUnderutilized
  expr: avg by (namespace, gtj) (avg_over_time(gentrain_gpu_utilization_ratio[30m])) < {{ $a.gpuUnderutilizedRatio }}
  for: 30m
  labels: {severity: info}
  annotations:
    summary: "GPUs of {{`{{ $labels.namespace }}/{{ $labels.gtj }}`}} are mostly idle."
    description: "The GPUs of {{`{{ $labels.namespace }}/{{ $labels.gtj }}`}} averaged {{`{{ $value | humanize }}`}} utilisation over 30 minutes (threshold {{ $a.gpuUnderutilizedRatio }})."
    runbook_url: {{ $a.runbookURL }}#gpuunderutilized
{{- end }}
{{- if include "gentrain.enabledAlert" (dict "root" . "name" "GPUMemoryPressure") | eq "true" }}
- alert: GPUMemoryPressure
  expr: max by (namespace, gtj) (gentrain_gpu_memory_used_bytes / gentrain_gpu_memory_total_bytes) > {{ $a.gpuMemoryPressureRatio }}
  for: 10m
  labels: {severity: warning}
  annotations:
    summary: "GPU memory of {{`{{ $labels.namespace }}/{{ $labels.gtj }}`}} is nearly full."
    description: "GPU memory of {{`{{ $labels.namespace }}/{{ $labels.gtj }}`}} is {{`{{ $value | humanize }}`}} full (threshold {{ $a.gpuMemoryPressureRatio }})."
    runbook_url: {{ $a.runbookURL }}#gpumemorypressure
{{- end }}
{{- if include "gentrain.enabledAlert" (dict "root" . "name" "OperatorDown") | eq "true" }}
- alert: OperatorDown
  expr: absent(up{job="{{ include "gentrain.fullname" . }}"} == 1)
  for: {{ $a.operatorDownFor }}
  labels: {severity: critical}
  annotations:
    summary: The gentrain operator is not running; jobs train on but nobody watches them.
    description: "No gentrain operator target has answered a scrape for 5 minutes: no milestone is diagnosed and no remediation applied until it is back."
    runbook_url: {{ $a.runbookURL }}#operatordown
{{- end }}
{{- end -}}
