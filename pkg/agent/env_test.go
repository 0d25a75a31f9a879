package agent

import (
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/berth-project/berth/pkg/upstream"
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
	env, _, err := containerEnv(pod, &pod.Spec.Containers[0], facts)
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

func TestContainerEnvFromObjects(t *testing.T) {
	cm := objectRef{upstream.ConfigMap, "cfg"}
	sec := objectRef{upstream.Secret, "creds"}
	facts := podFacts{objects: map[objectRef]map[string][]byte{
		cm:                              {"mode": []byte("fast"), "level": []byte("3"), "bad=key": []byte("x")},
		sec:                             {"password": []byte("hunter2"), "mode": []byte("secret")},
		{upstream.ConfigMap, "missing"}: nil,
	}}
	keyRef := func(name, key string, optional bool) *v1.EnvVarSource {
		return &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{
			LocalObjectReference: v1.LocalObjectReference{Name: name}, Key: key, Optional: &optional}}
	}
	for _, tc := range []struct {
		name    string
		c       v1.Container
		want    []string // KEY=value in order
		skipped []string
		err     string
	}{{
		name: "envFrom sorted by key, prefixed, env overrides it and may use it",
		c: v1.Container{
			EnvFrom: []v1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}},
			Env:     []v1.EnvVar{{Name: "CFG_mode", Value: "slow"}, {Name: "MSG", Value: "level $(CFG_level)"}},
		},
		want:    []string{"CFG_level=3", "CFG_mode=slow", "MSG=level 3"},
		skipped: []string{"CFG_bad=key"},
	}, {
		name: "a later source wins",
		c: v1.Container{EnvFrom: []v1.EnvFromSource{
			{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}},
			{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}}},
		}},
		want:    []string{"level=3", "mode=secret", "password=hunter2"},
		skipped: []string{"bad=key"},
	}, {
		name: "key references",
		c: v1.Container{Env: []v1.EnvVar{
			{Name: "MODE", ValueFrom: keyRef("cfg", "mode", false)},
			{Name: "PW", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{
				LocalObjectReference: v1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
		}},
		want: []string{"MODE=fast", "PW=hunter2"},
	}, {
		name: "optional references that do not resolve are left out",
		c: v1.Container{
			EnvFrom: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "missing"}, Optional: ptr.To(true)}}},
			Env:     []v1.EnvVar{{Name: "A", ValueFrom: keyRef("missing", "x", true)}, {Name: "B", ValueFrom: keyRef("cfg", "nokey", true)}, {Name: "C", Value: "c"}},
		},
		want: []string{"C=c"},
	}, {
		name: "a missing object",
		c:    v1.Container{Env: []v1.EnvVar{{Name: "A", ValueFrom: keyRef("missing", "x", false)}}},
		err:  `env[0] A: configMap "missing" not found`,
	}, {
		name: "a missing key",
		c:    v1.Container{Env: []v1.EnvVar{{Name: "A", Value: "a"}, {Name: "B", ValueFrom: keyRef("cfg", "nokey", false)}}},
		err:  `env[1] B: configMap "cfg" has no key "nokey"`,
	}, {
		name: "a missing envFrom source",
		c:    v1.Container{EnvFrom: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "missing"}}}}},
		err:  `envFrom[0]: configMap "missing" not found`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{tc.c}}}
			env, skipped, err := containerEnv(pod, &pod.Spec.Containers[0], facts)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, kv := range env {
				got = append(got, kv.Key+"="+string(kv.Value))
			}
			if !slices.Equal(got, tc.want) || !slices.Equal(skipped, tc.skipped) {
				t.Errorf("env %q skipped %q, want %q skipped %q", got, skipped, tc.want, tc.skipped)
			}
		})
	}
	if refs := envObjects(&v1.Container{
		EnvFrom: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}},
		Env:     []v1.EnvVar{{Name: "A", ValueFrom: keyRef("cfg", "mode", false)}, {Name: "B", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}}}}},
	}); !slices.Equal(refs, []objectRef{cm, sec}) {
		t.Errorf("envObjects = %v", refs)
	}
}
