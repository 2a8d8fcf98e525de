{{- define "gentrain.name" -}}gentrain{{- end -}}

{{- define "gentrain.fullname" -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gentrain.labels" -}}
app.kubernetes.io/name: gentrain-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gentrain
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "gentrain.selectorLabels" -}}
app.kubernetes.io/name: gentrain-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gentrain.enabledAlert" -}}
{{- not (hasKey .root.Values.alerts.disabled .name) -}}
{{- end -}}

{{/* The operator's RBAC rules; `cluster` adds what only a cluster-wide operator needs. */}}
{{- define "gentrain.rules" }}
  # Framework (kopf): peering between replicas, and posting Events.
  - apiGroups: [kopf.dev]
    resources: [{{ ternary "clusterkopfpeerings" "kopfpeerings" $.cluster }}]
    verbs: [get, list, watch, patch]
  - apiGroups: ["", events.k8s.io]
    resources: [events]
    verbs: [create, patch]
  {{- if .cluster }}
  # Framework (kopf): noticing new namespaces and new versions of its CRD.
  - apiGroups: [""]
    resources: [namespaces]
    verbs: [list, watch]
  - apiGroups: [apiextensions.k8s.io]
    resources: [customresourcedefinitions]
    verbs: [list, watch]
  # Application: whether any node has GPUs at all (the CPU fallback decision).
  - apiGroups: [""]
    resources: [nodes]
    verbs: [list]
  {{- end }}
  # Application: the jobs, their status, and remediation patches to their spec; delete:
  # only a finished job's spec.ttlSecondsAfterFinished.
  - apiGroups: [gentrain.io]
    resources: [generativetrainingjobs]
    verbs: [get, list, watch, patch, delete]
  - apiGroups: [gentrain.io]
    resources: [generativetrainingjobs/status]
    verbs: [get, patch]
  # Application: the children of each job (owned by it, garbage-collected with it).
  - apiGroups: [""]
    resources: [pods]
    # patch: only the annotation that makes a kubelet refresh the trainer's ConfigMap now.
    verbs: [get, list, watch, create, delete, patch]
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [get, create, patch]
  - apiGroups: [""]
    resources: [persistentvolumeclaims]
    # patch: only to release a claim from a job its TTL deletes (the weights stay).
    verbs: [get, create, patch]
  - apiGroups: [networking.k8s.io]
    resources: [networkpolicies]
    verbs: [create]
  # Application: the Kueue Workload of a job labelled kueue.x-k8s.io/queue-name (owned by
  # it, made before its trainer; made anew when the job's resources change while it
  # waits); its spec.active for spec.suspend; its status: Finished when the job ends, the
  # reservation given back after an eviction.
  - apiGroups: [kueue.x-k8s.io]
    resources: [workloads]
    verbs: [get, create, patch, delete]
  - apiGroups: [kueue.x-k8s.io]
    resources: [workloads/status]
    verbs: [patch]
  # Application: a job of several pods as a JobSet where the cluster has JobSet (owned by
  # the job; one per attempt; deleted to stop an attempt).
  - apiGroups: [jobset.x-k8s.io]
    resources: [jobsets]
    verbs: [get, create, delete]
  {{- if .cluster }}
  # Application: the node labels and tolerations of the flavours Kueue admitted a job on.
  - apiGroups: [kueue.x-k8s.io]
    resources: [resourceflavors]
    verbs: [get]
  {{- end }}
{{- end -}}

{{/* The namespaces a namespace-scoped operator watches: the listed ones, or the release's. */}}
{{- define "gentrain.watchNamespaces" -}}
{{- .Values.operator.watchNamespaces | default (list .Release.Namespace) | join "," -}}
{{- end -}}

{{/* Labels of an object prometheus-operator selects: the chart's, prometheusSelectorLabels
and the object's own extra labels (which win on a clash), one key once. */}}
{{- define "gentrain.monitoringLabels" -}}
{{- $labels := merge (deepCopy (.extra | default dict)) (deepCopy (.root.Values.prometheusSelectorLabels | default dict)) -}}
{{- include "gentrain.labels" .root }}
{{- with $labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* How much a counter of the operator's grew within a window, counting the first
increment: a job's series is born at 1 (prometheus_client creates the child at its first
inc), and increase() alone takes that birth for the start of the series, so a job's first
finding never fired an alert. A series younger than the window counts whole. */}}
{{- define "gentrain.growth" -}}
({{ .series }} unless {{ .series }} offset {{ .window }}) or increase({{ .series }}[{{ .window }}])
{{- end -}}
