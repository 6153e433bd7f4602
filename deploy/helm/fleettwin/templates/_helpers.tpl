{{/* Names and labels. */}}
{{- define "fleettwin.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fleettwin.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" NAME). */}}
{{- define "fleettwin.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "fleettwin.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "fleettwin.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default (include "fleettwin.fullname" .) }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end -}}
{{- end -}}

{{- define "fleettwin.tokensSecret" -}}
{{ .Values.tokens.existingSecret | default (printf "%s-tokens" (include "fleettwin.fullname" .)) }}
{{- end -}}

{{- define "fleettwin.storeSecret" -}}
{{- if .Values.store.uri -}}
{{ printf "%s-store" (include "fleettwin.fullname" .) }}
{{- else -}}
{{ required "store.uri or store.existingSecret is required" .Values.store.existingSecret }}
{{- end -}}
{{- end -}}

{{- define "fleettwin.storeKey" -}}
{{- if .Values.store.uri -}}uri{{- else -}}{{ .Values.store.uriKey }}{{- end -}}
{{- end -}}

{{- define "fleettwin.registryEnabled" -}}
{{- if and .Values.roles.registry.enabled (not .Values.schemaRegistry.url) -}}true{{- end -}}
{{- end -}}

{{- define "fleettwin.schemaRegistryUrl" -}}
{{- if .Values.schemaRegistry.url -}}
{{ .Values.schemaRegistry.url }}
{{- else -}}
{{ printf "http://%s-registry:%v" (include "fleettwin.fullname" .) .Values.roles.registry.service.port }}
{{- end -}}
{{- end -}}

{{/* The bridge's brokers: external ones, or every shard of the StatefulSet by its stable name. */}}
{{- define "fleettwin.mqttBrokers" -}}
{{- if .Values.mqtt.brokers -}}
{{ .Values.mqtt.brokers }}
{{- else -}}
{{- $name := printf "%s-mosquitto" (include "fleettwin.fullname" .) -}}
{{- $brokers := list -}}
{{- range $i := until (int .Values.mosquitto.shards) -}}
{{- $brokers = append $brokers (printf "%s-%d.%s.%s.svc:%v" $name $i $name $.Release.Namespace $.Values.mosquitto.service.port) -}}
{{- end -}}
{{ join "," $brokers }}
{{- end -}}
{{- end -}}

{{/* A role's settings: roleDefaults merged under roles.<role>: (dict "root" $ "role" NAME). */}}
{{- define "fleettwin.role" -}}
{{- $r := index .root.Values.roles .role -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.roleDefaults) (deepCopy $r)) -}}
{{- end -}}

{{/* Roles that consume Kafka as group fleettwin.<role> (roles with a keda topic). */}}
{{- define "fleettwin.kafkaRoles" -}}
bridge process score twin sink aggregate
{{- end -}}
