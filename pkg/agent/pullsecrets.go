package agent

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"path"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/pkg/upstream"
)

// dockerEntry is one registry's credentials in a docker config.
type dockerEntry struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"` // base64 of user:password
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// pullSecret is the registry credentials of one imagePullSecret: keyed by
// registry as written (a host with optional port, path and globs).
type pullSecret map[string]dockerEntry

// parsePullSecret reads a secret of type kubernetes.io/dockerconfigjson
// (".dockerconfigjson") or kubernetes.io/dockercfg (".dockercfg").
func parsePullSecret(data map[string][]byte) (pullSecret, error) {
	if raw, ok := data[v1.DockerConfigJsonKey]; ok {
		var cfg struct {
			Auths pullSecret `json:"auths"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", v1.DockerConfigJsonKey, err)
		}
		return cfg.Auths, nil
	}
	if raw, ok := data[v1.DockerConfigKey]; ok {
		var cfg pullSecret
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", v1.DockerConfigKey, err)
		}
		return cfg, nil
	}
	return nil, fmt.Errorf("neither %s nor %s in it", v1.DockerConfigJsonKey, v1.DockerConfigKey)
}

// pullCredentials are the credentials for image from the pod's pull
// secrets, in the order kubelet tries them: the most specific registry key
// first (keys sorted in reverse), and for equal keys the secrets' order.
func pullCredentials(image string, secrets []pullSecret) []*runtimeapi.AuthConfig {
	ref, err := name.ParseReference(image)
	if err != nil {
		return nil
	}
	host, repo := canonicalRegistry(ref.Context().RegistryStr()), ref.Context().RepositoryStr()
	type match struct {
		key   string
		entry dockerEntry
	}
	var matches []match
	for _, s := range secrets {
		for key, entry := range s {
			if registryMatches(key, host, repo) {
				matches = append(matches, match{key, entry})
			}
		}
	}
	slices.SortStableFunc(matches, func(a, b match) int { return cmp.Compare(b.key, a.key) })
	out := make([]*runtimeapi.AuthConfig, 0, len(matches))
	for _, m := range matches {
		user, pass := m.entry.Username, m.entry.Password
		if m.entry.Auth != "" && user == "" && pass == "" {
			if dec, err := base64.StdEncoding.DecodeString(m.entry.Auth); err == nil {
				user, pass, _ = strings.Cut(string(dec), ":")
			}
		}
		out = append(out, &runtimeapi.AuthConfig{Username: user, Password: pass, ServerAddress: host,
			IdentityToken: m.entry.IdentityToken, RegistryToken: m.entry.RegistryToken})
	}
	return out
}

// registryMatches: the key names the image's registry (globs per label of
// the host, the same port) and a prefix of its repository path.
func registryMatches(key, host, repo string) bool {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	keyHost, keyPath, _ := strings.Cut(key, "/")
	keyPath = strings.TrimSuffix(keyPath, "/")
	if keyPath == "v1" || keyPath == "v2" { // docker's old index URLs
		keyPath = ""
	}
	keyHost = canonicalRegistry(keyHost)
	kh, kp := splitPort(keyHost)
	ih, ip := splitPort(host)
	if kp != ip {
		return false
	}
	kl, il := strings.Split(kh, "."), strings.Split(ih, ".")
	if len(kl) != len(il) {
		return false
	}
	for i := range kl {
		if ok, err := path.Match(kl[i], il[i]); err != nil || !ok {
			return false
		}
	}
	return keyPath == "" || repo == keyPath || strings.HasPrefix(repo, keyPath+"/")
}

func splitPort(hostport string) (string, string) {
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return h, p
	}
	return hostport, ""
}

// canonicalRegistry spells Docker Hub one way.
func canonicalRegistry(host string) string {
	switch host {
	case "docker.io", "registry-1.docker.io", name.DefaultRegistry:
		return name.DefaultRegistry
	}
	return host
}

// podPullSecrets reads the pod's imagePullSecrets. Those that cannot be
// read are named in an event and left out, as kubelet does: the pull is
// tried with the others.
func (w *worker) podPullSecrets(ctx context.Context, pod *v1.Pod, container string) []pullSecret {
	if len(pod.Spec.ImagePullSecrets) == 0 {
		return nil
	}
	var out []pullSecret
	var failed []string
	for _, ref := range pod.Spec.ImagePullSecrets {
		if w.m.cfg.Objects == nil {
			failed = append(failed, fmt.Sprintf("%s (no upstream supplies secrets)", ref.Name))
			continue
		}
		data, err := w.m.cfg.Objects.ObjectData(ctx, pod, upstream.Secret, ref.Name)
		if err == nil && data == nil {
			err = fmt.Errorf("not found")
		}
		var s pullSecret
		if err == nil {
			s, err = parsePullSecret(data)
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s (%v)", ref.Name, err))
			continue
		}
		out = append(out, s)
	}
	if len(failed) > 0 {
		w.m.events.Record(w.eventPod(), container, v1.EventTypeWarning, "FailedToRetrieveImagePullSecret",
			"Unable to retrieve some image pull secrets ("+strings.Join(failed, ", ")+"); attempting to pull the image may not succeed.")
	}
	return out
}
