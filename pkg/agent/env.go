package agent

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"github.com/berth-project/berth/pkg/upstream"
)

// podFacts are the values fieldRef, resourceFieldRef and the configMap
// and secret references may read besides the pod's spec.
type podFacts struct {
	podIPs, hostIPs []string
	nodeCPU         resource.Quantity // allocatable, for unset limits
	nodeMemory      resource.Quantity
	objects         map[objectRef]map[string][]byte // nil data: the object does not exist
}

// objectRef names a configMap or secret in the pod's namespace.
type objectRef struct {
	kind upstream.ObjectKind
	name string
}

func (r objectRef) String() string { return fmt.Sprintf("%s %q", r.kind, r.name) }

// envObjects are the configMaps and secrets a container's environment
// reads.
func envObjects(c *v1.Container) []objectRef {
	var refs []objectRef
	add := func(kind upstream.ObjectKind, name string) {
		r := objectRef{kind, name}
		if !slices.Contains(refs, r) {
			refs = append(refs, r)
		}
	}
	for _, f := range c.EnvFrom {
		if f.ConfigMapRef != nil {
			add(upstream.ConfigMap, f.ConfigMapRef.Name)
		}
		if f.SecretRef != nil {
			add(upstream.Secret, f.SecretRef.Name)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			continue
		}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
			add(upstream.ConfigMap, r.Name)
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil {
			add(upstream.Secret, r.Name)
		}
	}
	return refs
}

// containerEnv resolves a container's environment as kubelet does: the
// keys of envFrom's sources first (a later source wins), then env in
// order, each value may use $(NAME) of those before it. skipped are
// envFrom keys that cannot be variable names.
func containerEnv(pod *v1.Pod, c *v1.Container, facts podFacts) (env []*runtimeapi.KeyValue, skipped []string, err error) {
	vals := map[string]string{}
	at := map[string]int{}
	set := func(k, v string) {
		vals[k] = v
		if i, ok := at[k]; ok {
			env[i].Value = []byte(v)
			return
		}
		at[k] = len(env)
		env = append(env, &runtimeapi.KeyValue{Key: k, Value: []byte(v)})
	}
	for i, f := range c.EnvFrom {
		ref, optional := objectRef{upstream.ConfigMap, ""}, false
		switch {
		case f.ConfigMapRef != nil:
			ref.name, optional = f.ConfigMapRef.Name, ptr.Deref(f.ConfigMapRef.Optional, false)
		case f.SecretRef != nil:
			ref = objectRef{upstream.Secret, f.SecretRef.Name}
			optional = ptr.Deref(f.SecretRef.Optional, false)
		default:
			continue
		}
		data := facts.objects[ref]
		if data == nil {
			if optional {
				continue
			}
			return nil, nil, fmt.Errorf("envFrom[%d]: %s not found", i, ref)
		}
		for _, k := range slices.Sorted(maps.Keys(data)) {
			if name := f.Prefix + k; envVarName(name) {
				set(name, string(data[k]))
			} else {
				skipped = append(skipped, name)
			}
		}
	}
	lookup := func(k string) (string, bool) { v, ok := vals[k]; return v, ok }
	for i, e := range c.Env {
		v := expand(e.Value, lookup)
		if src := e.ValueFrom; src != nil {
			var err error
			switch {
			case src.FieldRef != nil:
				v, err = fieldValue(pod, src.FieldRef.FieldPath, facts)
			case src.ResourceFieldRef != nil:
				v, err = resourceValue(pod, c.Name, src.ResourceFieldRef, facts)
			case src.ConfigMapKeyRef != nil:
				r := src.ConfigMapKeyRef
				v, err = objectKey(facts, objectRef{upstream.ConfigMap, r.Name}, r.Key)
				if err != nil && ptr.Deref(r.Optional, false) {
					continue
				}
			case src.SecretKeyRef != nil:
				r := src.SecretKeyRef
				v, err = objectKey(facts, objectRef{upstream.Secret, r.Name}, r.Key)
				if err != nil && ptr.Deref(r.Optional, false) {
					continue
				}
			default:
				err = fmt.Errorf("unsupported source")
			}
			if err != nil {
				return nil, nil, fmt.Errorf("env[%d] %s: %w", i, e.Name, err)
			}
		}
		set(e.Name, v)
	}
	return env, skipped, nil
}

// objectKey is one key of a configMap or secret.
func objectKey(facts podFacts, ref objectRef, key string) (string, error) {
	data := facts.objects[ref]
	if data == nil {
		return "", fmt.Errorf("%s not found", ref)
	}
	v, ok := data[key]
	if !ok {
		return "", fmt.Errorf("%s has no key %q", ref, key)
	}
	return string(v), nil
}

// envVarName is the API server's (relaxed) rule for a variable name:
// printable ASCII without "=".
func envVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' || s[i] == '=' {
			return false
		}
	}
	return true
}

// fieldValue is the downward API's value for a field path.
func fieldValue(pod *v1.Pod, path string, facts podFacts) (string, error) {
	if k, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	first := func(s []string) string {
		if len(s) == 0 {
			return ""
		}
		return s[0]
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return first(facts.podIPs), nil
	case "status.podIPs":
		return strings.Join(facts.podIPs, ","), nil
	case "status.hostIP":
		return first(facts.hostIPs), nil
	case "status.hostIPs":
		return strings.Join(facts.hostIPs, ","), nil
	}
	return "", fmt.Errorf("field path %q is not supported", path)
}

// subscript parses prefix['key'].
func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"['")
	if !ok || !strings.HasSuffix(rest, "']") {
		return "", false
	}
	return strings.TrimSuffix(rest, "']"), true
}

// formatMap renders labels or annotations as the downward API does: one
// key="value" line each, sorted.
func formatMap(m map[string]string) string {
	lines := make([]string, 0, len(m))
	for k, v := range m {
		lines = append(lines, k+"="+strconv.Quote(v))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// resourceValue is a container's request or limit in units of the divisor,
// rounded up; an unset limit reads as the node's allocatable amount.
func resourceValue(pod *v1.Pod, defaultContainer string, ref *v1.ResourceFieldSelector, facts podFacts) (string, error) {
	name := ref.ContainerName
	if name == "" {
		name = defaultContainer
	}
	var c *v1.Container
	for _, x := range allContainers(pod) {
		if x.Name == name {
			c = &x
			break
		}
	}
	if c == nil {
		return "", fmt.Errorf("resourceFieldRef: no container %q", name)
	}
	var q resource.Quantity
	switch ref.Resource {
	case "limits.cpu":
		q = orDefault(c.Resources.Limits.Cpu(), facts.nodeCPU)
	case "limits.memory":
		q = orDefault(c.Resources.Limits.Memory(), facts.nodeMemory)
	case "limits.ephemeral-storage":
		q = *c.Resources.Limits.StorageEphemeral()
	case "requests.cpu":
		q = *c.Resources.Requests.Cpu()
	case "requests.memory":
		q = *c.Resources.Requests.Memory()
	case "requests.ephemeral-storage":
		q = *c.Resources.Requests.StorageEphemeral()
	default:
		return "", fmt.Errorf("resourceFieldRef: resource %q is not supported", ref.Resource)
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if strings.HasSuffix(ref.Resource, ".cpu") {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
}

func orDefault(q *resource.Quantity, def resource.Quantity) resource.Quantity {
	if q == nil || q.IsZero() {
		return def
	}
	return *q
}
