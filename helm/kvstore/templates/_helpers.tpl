{{/*
Expand the name of the chart.
*/}}
{{- define "kvstore.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name. It names the StatefulSet and its
headless Service, so it is also the middle part of every pod's DNS name
(<fullname>-0.<fullname>.<namespace>.svc.<clusterDomain>). It is truncated at
63 characters because some Kubernetes name fields are limited to that (by the
DNS naming spec). If the release name contains the chart name it is used as
the full name, so release "kvstore" gives pods kvstore-0, kvstore-1, ...
*/}}
{{- define "kvstore.fullname" -}}
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

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "kvstore.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels, on every object the chart creates.
*/}}
{{- define "kvstore.labels" -}}
helm.sh/chart: {{ include "kvstore.chart" . }}
{{ include "kvstore.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels: name and instance only, because a StatefulSet's selector
and volumeClaimTemplates cannot change after install.
*/}}
{{- define "kvstore.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kvstore.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the ServiceAccount the pods run as.
*/}}
{{- define "kvstore.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kvstore.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding the tokens: the user's existing Secret, or the
one this chart renders.
*/}}
{{- define "kvstore.secretName" -}}
{{- default (include "kvstore.fullname" .) .Values.auth.existingSecret }}
{{- end }}

{{/*
Key of the replication token inside that Secret.
*/}}
{{- define "kvstore.replTokenKey" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecretReplKey }}
{{- else -}}
repl-token
{{- end }}
{{- end }}

{{/*
Key of the client token inside that Secret.
*/}}
{{- define "kvstore.authTokenKey" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecretAuthKey }}
{{- else -}}
auth-token
{{- end }}
{{- end }}

{{/*
Where the pods see the tokens: the Secret's volume, mounted read-only.
*/}}
{{- define "kvstore.tokenDir" -}}
/etc/kvstore/tokens
{{- end }}

{{/*
The image, with the tag defaulting to the chart's appVersion.
*/}}
{{- define "kvstore.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
