{{- define "identity-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "identity-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "identity-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "identity-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "identity-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- /* The pod label that names an instance's shard ("default" for the
default instance); the objects' own shard label is sharding.fluxcd.io/key. */ -}}
{{- define "identity-operator.shardLabel" -}}
identity.tenantops.io/shard
{{- end -}}

{{- /* The selector of one instance's Deployment. The default instance keeps
the selector it always had (a Deployment's selector cannot change on upgrade);
a shard's pods carry another app.kubernetes.io/name, so that no Deployment
selects another's pods. */ -}}
{{- define "identity-operator.instanceSelectorLabels" -}}
{{- if .shard -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}-shard
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{ include "identity-operator.shardLabel" .root }}: {{ .shard }}
{{- else -}}
{{ include "identity-operator.selectorLabels" .root }}
{{- end -}}
{{- end -}}

{{- /* Every instance's pods: what the metrics Service selects. */ -}}
{{- define "identity-operator.podsOfRelease" -}}
app.kubernetes.io/part-of: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
