{{/* Rules of the controller: exactly the calls it makes (listed in README.md). */}}
{{- define "driftwatch.controllerRules" -}}
# DriftMonitors: watch them, set the run-now / slot annotations, write status (server-side apply).
- apiGroups: [driftwatch.dev]
  resources: [driftmonitors]
  verbs: [get, list, watch, patch]
- apiGroups: [driftwatch.dev]
  resources: [driftmonitors/status]
  verbs: [patch]
# DriftEvents: raise them (deterministic names, server-side apply) and write their status.
- apiGroups: [driftwatch.dev]
  resources: [driftevents]
  verbs: [get, list, watch, create, patch]
- apiGroups: [driftwatch.dev]
  resources: [driftevents/status]
  verbs: [patch]
# The check and packaging Jobs: create, watch, prune finished ones.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete, patch]
# The Jobs' Pods: read the result document from the termination message.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# Kubernetes Events marking transitions (CheckScheduled, DriftDetected, ...).
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}
{{- define "driftwatch.authRules" -}}
# The HTTP API authenticates bearer tokens and authorizes callers like kube-rbac-proxy.
- apiGroups: [authentication.k8s.io]
  resources: [tokenreviews]
  verbs: [create]
- apiGroups: [authorization.k8s.io]
  resources: [subjectaccessreviews]
  verbs: [create]
{{- end }}
{{- define "driftwatch.impersonationRules" -}}
# Decisions made through the HTTP API are written as the authenticated caller (impersonation).
- apiGroups: [""]
  resources: [users, groups, serviceaccounts]
  verbs: [impersonate]
{{- end }}
