{{- define "hashgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hashgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "hashgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hashgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hashgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "hashgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: hashgate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "hashgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "hashgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The config file as rendered into the ConfigMap (also hashed for configReload=restart). */}}
{{- define "hashgate.configFile" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- if $cfg.ledger -}}
{{- $l := $cfg.ledger -}}
{{- $backend := default "sqlite" $l.backend -}}
{{- if and (eq $backend "sqlite") (not $l.path) -}}
{{- $_ := set $l "path" (printf "%s/ledger.db" .Values.ledger.persistence.mountPath) -}}
{{- end -}}
{{- if and .Values.ledger.persistence.enabled (not $l.instance) -}}
{{/* One pod at a time owns the file: a stable tag keeps its lifetime totals across pod replacements. */}}
{{- $_ := set $l "instance" (include "hashgate.fullname" .) -}}
{{- end -}}
{{- if and (eq $backend "postgres") (not $l.url) (not $l.url_file) .Values.ledger.postgresUrlSecret.name -}}
{{- $_ := set $l "url" "${HASHGATE_LEDGER_URL}" -}}
{{- end -}}
{{- end -}}
{{ toYaml $cfg }}
{{- end -}}

{{/* The ledger's backend as hashgate reads it: a section alone means sqlite. */}}
{{- define "hashgate.ledgerBackend" -}}
{{- if .Values.config.ledger -}}{{ default "sqlite" .Values.config.ledger.backend }}{{- else -}}off{{- end -}}
{{- end -}}

{{- define "hashgate.ledgerClaim" -}}
{{- default (printf "%s-ledger" (include "hashgate.fullname" .)) .Values.ledger.persistence.existingClaim -}}
{{- end -}}

{{/* Refuses settings that would break a drain or the probes. */}}
{{- define "hashgate.validate" -}}
{{- $drain := 10 -}}
{{- if and .Values.config.admin (hasKey .Values.config.admin "drain_seconds") -}}
{{- $drain = .Values.config.admin.drain_seconds -}}
{{- end -}}
{{- $need := add (int .Values.preStopSeconds) (int (ceil $drain)) 5 -}}
{{- if lt (int .Values.terminationGracePeriodSeconds) (int $need) -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be at least preStopSeconds + config.admin.drain_seconds + 5 = %d, or pods are killed mid-drain" (int .Values.terminationGracePeriodSeconds) (int $need)) -}}
{{- end -}}
{{- if not (and .Values.config.admin .Values.config.admin.bind) -}}
{{- fail "config.admin.bind is required: the probes use /healthz and /readyz" -}}
{{- end -}}
{{- if not (hasSuffix (printf ":%d" (int .Values.ports.admin)) .Values.config.admin.bind) -}}
{{- fail (printf "config.admin.bind (%s) must use ports.admin (%d)" .Values.config.admin.bind (int .Values.ports.admin)) -}}
{{- end -}}
{{- $backend := include "hashgate.ledgerBackend" . -}}
{{- if .Values.ledger.persistence.enabled -}}
{{- if ne $backend "sqlite" -}}
{{- fail (printf "ledger.persistence.enabled is for the sqlite backend (config.ledger.backend is %s)" $backend) -}}
{{- end -}}
{{- if and (not (has "ReadWriteMany" .Values.ledger.persistence.accessModes)) (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) -}}
{{- fail "ledger.persistence: a ReadWriteOnce volume holds one pod's SQLite file: set replicaCount 1 (no autoscaling), or use config.ledger.backend postgres for several replicas" -}}
{{- end -}}
{{- end -}}
{{- if and (eq $backend "postgres") (not .Values.config.ledger.url) (not .Values.config.ledger.url_file) (not .Values.ledger.postgresUrlSecret.name) -}}
{{- fail "config.ledger.backend postgres needs ledger.postgresUrlSecret.name (or config.ledger.url / url_file)" -}}
{{- end -}}
{{- if hasPrefix "127." .Values.config.admin.bind -}}
{{- fail "config.admin.bind must not be a loopback address in a pod (probes and Prometheus come from outside): use 0.0.0.0" -}}
{{- end -}}
{{- end -}}
