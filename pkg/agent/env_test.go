package agent

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestContainerEnv(t *testing.T) {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-n1", Namespace: "default", UID: "u1",
			Labels: map[string]string{"app": "web", "tier": "front"}},
		Spec: v1.PodSpec{NodeName: "n1", Containers: []v1.Container{{
			Name: "c",
			Resources: v1.ResourceRequirements{
				Limits:   v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")},
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m")},
			},
			Env: []v1.EnvVar{
				{Name: "NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				{Name: "APP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
				{Name: "IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
				{Name: "MSG", Value: "$(NAME) on $(NODE) at $(IP)"},
				{Name: "NODE", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
				{Name: "MEM_MI", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
				{Name: "CPU", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "requests.cpu"}}},
				{Name: "CPU_LIMIT", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.cpu"}}},
			},
		}}},
	}
	facts := podFacts{podIPs: []string{"10.0.0.5"}}
	facts.nodeCPU.SetMilli(2000)
	env, err := containerEnv(pod, &pod.Spec.Containers[0], facts)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range env {
		got[kv.Key] = string(kv.Value)
	}
	// $(NODE) is defined after MSG, so it stays as written.
	want := map[string]string{"NAME": "web-n1", "APP": "web", "IP": "10.0.0.5", "MSG": "web-n1 on $(NODE) at 10.0.0.5",
		"NODE": "n1", "MEM_MI": "64", "CPU": "1", "CPU_LIMIT": "2"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if v, _ := fieldValue(pod, "metadata.labels", facts); v != "app=\"web\"\ntier=\"front\"" {
		t.Errorf("metadata.labels = %q", v)
	}
	if _, err := fieldValue(pod, "spec.bogus", facts); err == nil {
		t.Error("unknown field path accepted")
	}
}
