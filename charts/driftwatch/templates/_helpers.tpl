{{/* Chart name. */}}
{{- define "driftwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, plus the chart name when the release name does not contain it. */}}
{{- define "driftwatch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "driftwatch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "driftwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "driftwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "driftwatch.labels" -}}
helm.sh/chart: {{ include "driftwatch.chart" . }}
{{ include "driftwatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: driftwatch
{{- end }}

{{- define "driftwatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "driftwatch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository[:tag][@digest] from an image block, with fallbacks. */}}
{{- define "driftwatch.imageRef" -}}
{{- $repo := .image.repository | default .fallback.repository -}}
{{- $tag := .image.tag | default .fallback.tag | default .appVersion -}}
{{- $digest := .image.digest | default .fallback.digest -}}
{{- if $digest -}}
{{- printf "%s@%s" $repo $digest -}}
{{- else -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}
{{- end }}

{{- define "driftwatch.image" -}}
{{- include "driftwatch.imageRef" (dict "image" .Values.image "fallback" (dict) "appVersion" .Chart.AppVersion) -}}
{{- end }}

{{/* The Jobs' image: jobs.image, else the controller image. */}}
{{- define "driftwatch.jobImage" -}}
{{- $fallback := .Values.image -}}
{{- if .Values.jobs.image.repository -}}
{{- $fallback = dict -}}
{{- end -}}
{{- include "driftwatch.imageRef" (dict "image" .Values.jobs.image "fallback" $fallback "appVersion" .Chart.AppVersion) -}}
{{- end }}

{{/* Leader election is on when asked for or when more than one replica runs. */}}
{{- define "driftwatch.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) -}}
true
{{- end -}}
{{- end }}

{{- define "driftwatch.leaseName" -}}
{{- default (printf "%s-controller" (include "driftwatch.fullname" .)) .Values.leaderElection.leaseName -}}
{{- end }}

{{/* Replace the default metric prefix in a text (alert rules, dashboard). */}}
{{- define "driftwatch.withPrefix" -}}
{{- if eq .prefix "video_ai" -}}
{{- .text -}}
{{- else -}}
{{- .text | replace "video_ai_" (printf "%s_" .prefix) -}}
{{- end -}}
{{- end }}

{{/* Fail on values that cannot work together. */}}
{{- define "driftwatch.validate" -}}
{{- if and .Values.rbac.namespaced (not .Values.controller.watchNamespaces) -}}
{{- fail "rbac.namespaced=true needs controller.watchNamespaces (the namespaces to grant access in)" -}}
{{- end -}}
{{- end }}
