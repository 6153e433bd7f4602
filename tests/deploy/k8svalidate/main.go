// k8svalidate decodes Kubernetes manifests strictly against the Kubernetes API types, offline: every
// document of the YAML streams it is given (files, or standard input) must be a kind it knows, and must
// decode into that kind's Go type (k8s.io/api) with no unknown field, no duplicate field, no wrong type.
// The decoding is the API server's own strict decoding (sigs.k8s.io/json, case-sensitive), so what passes
// here passes `kubectl apply --validate=strict` as far as the schema goes; admission rules (required fields,
// value ranges) are not checked, except the few listed in checkObject.
//
// KEDA's ScaledObject and TriggerAuthentication are decoded into the structs in keda.go, a copy of the
// fields of KEDA's v1alpha1 API types (github.com/kedacore/keda/v2/apis/keda/v1alpha1) that a chart uses:
// KEDA's own module pulls controller-runtime and most of Kubernetes, too much to build for one test.
//
// Usage: k8svalidate [FILE...]   (exit 0: every document valid; 1: a message per invalid document)
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// kinds maps apiVersion/kind to a new value of its Go type.
var kinds = map[string]func() any{
	"v1/ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                              func() any { return &corev1.Secret{} },
	"v1/Service":                             func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                      func() any { return &corev1.ServiceAccount{} },
	"v1/PersistentVolumeClaim":               func() any { return &corev1.PersistentVolumeClaim{} },
	"v1/Pod":                                 func() any { return &corev1.Pod{} },
	"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                    func() any { return &appsv1.StatefulSet{} },
	"batch/v1/Job":                           func() any { return &batchv1.Job{} },
	"policy/v1/PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"networking.k8s.io/v1/NetworkPolicy":     func() any { return &networkingv1.NetworkPolicy{} },
	"networking.k8s.io/v1/Ingress":           func() any { return &networkingv1.Ingress{} },
	"rbac.authorization.k8s.io/v1/Role":      func() any { return &rbacv1.Role{} },
	"rbac.authorization.k8s.io/v1/RoleBinding": func() any {
		return &rbacv1.RoleBinding{}
	},
	"keda.sh/v1alpha1/ScaledObject":          func() any { return &ScaledObject{} },
	"keda.sh/v1alpha1/TriggerAuthentication": func() any { return &TriggerAuthentication{} },
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// validate decodes one document (JSON) strictly; nil when it is valid.
func validate(doc []byte) (string, error) {
	var tm typeMeta
	if err := kjson.UnmarshalCaseSensitivePreserveInts(doc, &tm); err != nil {
		return "?", fmt.Errorf("not an object: %w", err)
	}
	name := tm.APIVersion + "/" + tm.Kind
	newObject, ok := kinds[name]
	if !ok {
		return name, fmt.Errorf("unknown apiVersion/kind %q", name)
	}
	obj := newObject()
	strict, err := kjson.UnmarshalStrict(doc, obj)
	if err != nil {
		return name, err
	}
	if len(strict) > 0 {
		return name, errors.Join(strict...)
	}
	if o, ok := obj.(metav1.Object); ok {
		name += " " + o.GetName()
	}
	return name, checkObject(obj)
}

// checkObject: the few admission rules a chart gets wrong most often.
func checkObject(obj any) error {
	if o, ok := obj.(metav1.Object); ok && o.GetName() == "" {
		return errors.New("metadata.name is empty")
	}
	var sel *metav1.LabelSelector
	var tmpl *corev1.PodTemplateSpec
	switch o := obj.(type) {
	case *appsv1.Deployment:
		sel, tmpl = o.Spec.Selector, &o.Spec.Template
	case *appsv1.StatefulSet:
		sel, tmpl = o.Spec.Selector, &o.Spec.Template
	case *policyv1.PodDisruptionBudget:
		if o.Spec.Selector == nil {
			return errors.New("spec.selector is missing")
		}
		if (o.Spec.MinAvailable == nil) == (o.Spec.MaxUnavailable == nil) {
			return errors.New("exactly one of spec.minAvailable and spec.maxUnavailable must be set")
		}
	case *ScaledObject:
		return o.check()
	}
	if tmpl == nil {
		return nil
	}
	if sel == nil {
		return errors.New("spec.selector is missing")
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return fmt.Errorf("spec.selector: %w", err)
	}
	if s.Empty() || !s.Matches(labels.Set(tmpl.Labels)) {
		return fmt.Errorf("spec.selector %v does not match the pod template's labels %v", s, tmpl.Labels)
	}
	for _, c := range append(append([]corev1.Container{}, tmpl.Spec.InitContainers...), tmpl.Spec.Containers...) {
		if c.Name == "" || c.Image == "" {
			return errors.New("a container without name or image")
		}
	}
	return nil
}

// documents splits a YAML stream into its documents, as JSON; empty documents are dropped.
func documents(r io.Reader) ([][]byte, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var out [][]byte
	for {
		doc, err := reader.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		j, err := yaml.YAMLToJSONStrict(doc) // duplicate keys are an error
		if err != nil {
			return nil, fmt.Errorf("YAML: %w", err)
		}
		if string(j) == "null" {
			continue
		}
		out = append(out, j)
	}
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(string(doc), "\n") {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		b.WriteString(line + "\n")
	}
	return b.Bytes()
}

func run(name string, r io.Reader) (ok, bad int) {
	docs, err := documents(r)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 0, 1
	}
	for i, d := range docs {
		what, err := validate(d)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: document %d (%s): %v\n", name, i+1, what, err)
			bad++
		} else {
			ok++
		}
	}
	return ok, bad
}

func main() {
	ok, bad := 0, 0
	if len(os.Args) < 2 {
		ok, bad = run("stdin", os.Stdin)
	}
	for _, f := range os.Args[1:] {
		file, err := os.Open(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		o, b := run(f, file)
		file.Close()
		ok, bad = ok+o, bad+b
	}
	if ok+bad == 0 {
		fmt.Fprintln(os.Stderr, "k8svalidate: no documents")
		os.Exit(1)
	}
	fmt.Printf("k8svalidate: %d valid, %d invalid\n", ok, bad)
	if bad > 0 {
		os.Exit(1)
	}
}
