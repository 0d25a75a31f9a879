package agent

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podFacts are the values fieldRef and resourceFieldRef may read besides
// the pod's spec.
type podFacts struct {
	podIPs, hostIPs []string
	nodeCPU         resource.Quantity // allocatable, for unset limits
	nodeMemory      resource.Quantity
}

// containerEnv resolves a container's environment in order: each value may
// use $(NAME) of those before it.
func containerEnv(pod *v1.Pod, c *v1.Container, facts podFacts) ([]*runtimeapi.KeyValue, error) {
	vals := map[string]string{}
	lookup := func(k string) (string, bool) { v, ok := vals[k]; return v, ok }
	out := make([]*runtimeapi.KeyValue, 0, len(c.Env))
	for i, e := range c.Env {
		v := expand(e.Value, lookup)
		if src := e.ValueFrom; src != nil {
			var err error
			switch {
			case src.FieldRef != nil:
				v, err = fieldValue(pod, src.FieldRef.FieldPath, facts)
			case src.ResourceFieldRef != nil:
				v, err = resourceValue(pod, c.Name, src.ResourceFieldRef, facts)
			default:
				err = fmt.Errorf("unsupported source")
			}
			if err != nil {
				return nil, fmt.Errorf("env[%d] %s: %w", i, e.Name, err)
			}
		}
		vals[e.Name] = v
		out = append(out, &runtimeapi.KeyValue{Key: e.Name, Value: []byte(v)})
	}
	return out, nil
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
