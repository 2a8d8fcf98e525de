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
