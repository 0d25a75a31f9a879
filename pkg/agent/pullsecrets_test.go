package agent

import (
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestPullCredentials(t *testing.T) {
	jsonSecret, err := parsePullSecret(map[string][]byte{v1.DockerConfigJsonKey: []byte(`{"auths": {
		"registry.example.com:5000": {"username": "port", "password": "p1"},
		"registry.example.com": {"auth": "dXNlcjpwYXNz"},
		"registry.example.com/team": {"username": "team", "password": "p2"},
		"*.example.org": {"username": "glob", "password": "p3"},
		"https://index.docker.io/v1/": {"username": "hub", "password": "p4"}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	cfgSecret, err := parsePullSecret(map[string][]byte{v1.DockerConfigKey: []byte(`{"registry.example.com": {"username": "old", "password": "p5"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	secrets := []pullSecret{jsonSecret, cfgSecret}
	for _, tc := range []struct {
		image string
		want  []string // user:password in the order tried
	}{
		{"registry.example.com/team/app:1", []string{"team:p2", "user:pass", "old:p5"}},
		{"registry.example.com/teams/app:1", []string{"user:pass", "old:p5"}},
		{"registry.example.com:5000/app", []string{"port:p1"}},
		{"a.example.org/app", []string{"glob:p3"}},
		{"a.b.example.org/app", nil}, // a glob stands for one label
		{"busybox", []string{"hub:p4"}},
		{"docker.io/library/busybox", []string{"hub:p4"}},
		{"other.example.com/app", nil},
		{"not a reference", nil},
	} {
		var got []string
		for _, c := range pullCredentials(tc.image, secrets) {
			got = append(got, c.Username+":"+c.Password)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: credentials %q, want %q", tc.image, got, tc.want)
		}
	}
	for _, data := range []map[string][]byte{
		{v1.DockerConfigJsonKey: []byte("{")},
		{"password": []byte("x")},
	} {
		if _, err := parsePullSecret(data); err == nil {
			t.Errorf("pull secret %q accepted", data)
		}
	}
}
