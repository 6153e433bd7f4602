package main

// KEDA's ScaledObject and TriggerAuthentication (keda.sh/v1alpha1): the fields of
// github.com/kedacore/keda/v2/apis/keda/v1alpha1 (scaledobject_types.go, triggerauthentication_types.go,
// KEDA 2.x) with the same JSON names and Go types, so strict decoding rejects what KEDA's CRD schema rejects
// for them; fields a chart never sets (status, pod identity, Vault and cloud secret stores) are left out, so
// setting one fails here: add it from KEDA's types first. check() adds what KEDA's Kafka scaler requires.

import (
	"errors"
	"fmt"
	"strconv"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type ScaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ScaledObjectSpec `json:"spec"`
}

type ScaledObjectSpec struct {
	ScaleTargetRef        *ScaleTarget    `json:"scaleTargetRef"`
	PollingInterval       *int32          `json:"pollingInterval,omitempty"`
	InitialCooldownPeriod *int32          `json:"initialCooldownPeriod,omitempty"`
	CooldownPeriod        *int32          `json:"cooldownPeriod,omitempty"`
	IdleReplicaCount      *int32          `json:"idleReplicaCount,omitempty"`
	MinReplicaCount       *int32          `json:"minReplicaCount,omitempty"`
	MaxReplicaCount       *int32          `json:"maxReplicaCount,omitempty"`
	Advanced              *AdvancedConfig `json:"advanced,omitempty"`
	Triggers              []ScaleTriggers `json:"triggers"`
	Fallback              *Fallback       `json:"fallback,omitempty"`
}

type ScaleTarget struct {
	Name                   string `json:"name"`
	APIVersion             string `json:"apiVersion,omitempty"`
	Kind                   string `json:"kind,omitempty"`
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

type AdvancedConfig struct {
	HorizontalPodAutoscalerConfig *HorizontalPodAutoscalerConfig `json:"horizontalPodAutoscalerConfig,omitempty"`
	RestoreToOriginalReplicaCount bool                           `json:"restoreToOriginalReplicaCount,omitempty"`
}

type HorizontalPodAutoscalerConfig struct {
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
	Name     string                                         `json:"name,omitempty"`
}

type ScaleTriggers struct {
	Type              string                         `json:"type"`
	Name              string                         `json:"name,omitempty"`
	UseCachedMetrics  bool                           `json:"useCachedMetrics,omitempty"`
	Metadata          map[string]string              `json:"metadata"`
	AuthenticationRef *AuthenticationRef             `json:"authenticationRef,omitempty"`
	MetricType        autoscalingv2.MetricTargetType `json:"metricType,omitempty"`
}

type AuthenticationRef struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
}

type Fallback struct {
	FailureThreshold int32 `json:"failureThreshold"`
	Replicas         int32 `json:"replicas"`
}

type TriggerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              TriggerAuthenticationSpec `json:"spec"`
}

type TriggerAuthenticationSpec struct {
	SecretTargetRef []AuthSecretTargetRef `json:"secretTargetRef,omitempty"`
	Env             []AuthEnvironment     `json:"env,omitempty"`
}

type AuthSecretTargetRef struct {
	Parameter string `json:"parameter"`
	Name      string `json:"name"`
	Key       string `json:"key"`
}

type AuthEnvironment struct {
	Parameter     string `json:"parameter"`
	Name          string `json:"name"`
	ContainerName string `json:"containerName,omitempty"`
}

// The metadata of KEDA's Kafka scaler (docs: keda.sh/docs/latest/scalers/apache-kafka/).
var kafkaMetadata = map[string]bool{
	"bootstrapServers": true, "consumerGroup": true, "topic": true, "lagThreshold": true,
	"activationLagThreshold": true, "offsetResetPolicy": true, "allowIdleConsumers": true,
	"scaleToZeroOnInvalidOffset": true, "excludePersistentLag": true, "limitToPartitionsWithLag": true,
	"ensureEvenDistributionOfPartitions": true, "partitionLimitation": true, "version": true, "sasl": true,
	"tls": true, "unsafeSsl": true,
}

func (o *ScaledObject) check() error {
	s := o.Spec
	if s.ScaleTargetRef == nil || s.ScaleTargetRef.Name == "" {
		return errors.New("spec.scaleTargetRef.name is missing")
	}
	if len(s.Triggers) == 0 {
		return errors.New("spec.triggers is empty")
	}
	if s.MinReplicaCount != nil && s.MaxReplicaCount != nil && *s.MinReplicaCount > *s.MaxReplicaCount {
		return errors.New("spec.minReplicaCount exceeds spec.maxReplicaCount")
	}
	for i, t := range s.Triggers {
		if t.Type != "kafka" {
			continue
		}
		for k := range t.Metadata {
			if !kafkaMetadata[k] {
				return fmt.Errorf("triggers[%d]: kafka scaler has no metadata %q", i, k)
			}
		}
		for _, k := range []string{"bootstrapServers", "consumerGroup", "lagThreshold"} {
			if t.Metadata[k] == "" {
				return fmt.Errorf("triggers[%d]: kafka scaler needs metadata %q", i, k)
			}
		}
		if _, err := strconv.ParseInt(t.Metadata["lagThreshold"], 10, 64); err != nil {
			return fmt.Errorf("triggers[%d]: lagThreshold %q is not an integer", i, t.Metadata["lagThreshold"])
		}
	}
	return nil
}
