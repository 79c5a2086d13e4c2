{{/*
Expand the name of the chart.
*/}}
{{- define "kvstore.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name. It names the StatefulSet, so the
pods are <fullname>-0, <fullname>-1, ... It is truncated at 63 characters
because some Kubernetes name fields are limited to that (by the DNS naming
spec); kvstore.validateValues refuses one over 52 (a StatefulSet's limit). If
the release name contains the chart name it is used as the full name, so
release "kvstore" gives pods kvstore-0, kvstore-1, ...
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
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The annotations line of an object's metadata (indented for it), from
commonAnnotations and the object's own (the dict passed as "own"; they
win), or nothing when both are empty. Call right after the labels with
{{- include "kvstore.annotations" (dict "own" .Values.x.annotations "context" .) }}
*/}}
{{- define "kvstore.annotations" -}}
{{- $all := merge (dict) (.own | default dict) .context.Values.commonAnnotations }}
{{- with $all }}
  annotations:
    {{- toYaml . | nindent 4 }}
{{- end }}
{{- end }}

{{/*
<fullname>-<suffix>, the full name shortened first so that the suffix
survives the 63-character limit. Call with (list $ "suffix").
*/}}
{{- define "kvstore.suffixed" -}}
{{- $suffix := index . 1 }}
{{- $base := include "kvstore.fullname" (index . 0) | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s-%s" $base $suffix }}
{{- end }}

{{/*
The headless Service: per-pod DNS names for replication, and for peer
discovery (PEERS_DNS). Not the Service clients want: see NOTES.txt.
*/}}
{{- define "kvstore.headlessName" -}}
{{- include "kvstore.suffixed" (list . "headless") }}
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
The image: [registry/]repository, then @digest when given, else :tag with
the tag defaulting to the chart's appVersion.
*/}}
{{- define "kvstore.image" -}}
{{- $repo := .Values.image.repository }}
{{- with .Values.image.registry }}{{ $repo = printf "%s/%s" (trimSuffix "/" .) $repo }}{{ end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Does the image name no registry? Then only nodes that were given the image
(minikube image load, kind load) can run it: a bare "kvstore" means
docker.io/library/kvstore, which does not exist. "true" or "".
*/}}
{{- define "kvstore.imageIsLocal" -}}
{{- if and (not .Values.image.registry) (not (contains "/" .Values.image.repository)) }}true{{ end }}
{{- end }}

{{/*
Resources of the kvstore container: .Values.resources when set, else the
resourcesPreset's.
*/}}
{{- define "kvstore.resources" -}}
{{- if .Values.resources }}
{{- toYaml .Values.resources }}
{{- else }}
{{- $presets := dict
    "none" dict
    "nano" (dict "requests" (dict "cpu" "50m" "memory" "32Mi"))
    "micro" (dict "requests" (dict "cpu" "100m" "memory" "64Mi") "limits" (dict "memory" "256Mi"))
    "small" (dict "requests" (dict "cpu" "250m" "memory" "128Mi") "limits" (dict "memory" "1Gi")) }}
{{- with get $presets .Values.resourcesPreset }}
{{- toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Resources of the short-lived containers (volume-permissions, the helm test
pod): the same static binary, a client or a chown, well under 16 MiB.
*/}}
{{- define "kvstore.helperResources" -}}
requests:
  cpu: 10m
  memory: 16Mi
limits:
  memory: 64Mi
{{- end }}

{{/*
Values Kubernetes would accept but that break the release; each fails the
render with what to change. Included by statefulset.yaml.
*/}}
{{- define "kvstore.validateValues" -}}
{{- $sts := include "kvstore.fullname" . }}
{{- if gt (len $sts) 52 }}
{{- fail (printf "the StatefulSet name %q is %d characters; over 52 its pods cannot be created (the controller-revision-hash label gets too long, kubernetes#64023). Use a shorter release name, or set fullnameOverride or nameOverride." $sts (len $sts)) }}
{{- end }}
{{- $sc := .Values.containerSecurityContext }}
{{- $numeric := list "int" "int64" "float64" }}
{{- if and .Values.persistence.enabled .Values.volumePermissions.enabled (not (and (has (kindOf $sc.runAsUser) $numeric) (has (kindOf $sc.runAsGroup) $numeric))) }}
{{- fail "volumePermissions.enabled needs numeric containerSecurityContext.runAsUser and runAsGroup: they name the owner it gives /data. Set them, or set volumePermissions.enabled=false (with a volume that honours podSecurityContext.fsGroup)." }}
{{- end }}
{{- if .Values.pdb.create }}
{{- $min := include "kvstore.pdbValue" .Values.pdb.minAvailable }}
{{- $max := include "kvstore.pdbValue" .Values.pdb.maxUnavailable }}
{{- $n := int .Values.replicaCount }}
{{- if and $min $max }}
{{- fail "set pdb.minAvailable or pdb.maxUnavailable, not both (a PodDisruptionBudget takes one)." }}
{{- end }}
{{- if or (eq $max "0") (eq $max "0%") }}
{{- fail "pdb.maxUnavailable=0 allows no eviction: kubectl drain would hang on every node running a kvstore pod. Use at least 1, or pdb.create=false." }}
{{- end }}
{{- if and $min (or (and (hasSuffix "%" $min) (ge (int (trimSuffix "%" $min)) 100)) (and (not (hasSuffix "%" $min)) (gt $n 0) (ge (int $min) $n))) }}
{{- fail (printf "pdb.minAvailable=%s with replicaCount=%d allows no eviction: kubectl drain would hang on every node running a kvstore pod. Use at most %d, pdb.maxUnavailable, or pdb.create=false." $min $n (sub $n 1)) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A pdb field as a string: "" when unset (empty or null), else "1" or "50%".
*/}}
{{- define "kvstore.pdbValue" -}}
{{- if not (kindIs "invalid" .) }}{{ toString . }}{{ end }}
{{- end }}
