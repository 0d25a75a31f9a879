package kube

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/berth-project/berth/pkg/upstream"
)

// objectTTL is how long a configMap or secret read is reused: berth asks
// for volumes on every pass over a pod, the API server sees at most one
// read per object and minute (kubelet's "Cache" change detection).
const objectTTL = time.Minute

// volumeCache remembers objects and tokens for VolumeFiles.
type volumeCache struct {
	mu      sync.Mutex
	objects map[string]cachedObject
	tokens  map[string]cachedToken
}

type cachedObject struct {
	data    map[string][]byte // nil: not found
	fetched time.Time
}

type cachedToken struct {
	token   string
	refresh time.Time // 80 % of its lifetime, as kubelet renews
	expires time.Time
}

// VolumeFiles is upstream.VolumeSource's: configMaps and secrets read
// through the API (kept for objectTTL), service account tokens bound to
// the pod (renewed at 80 % of their lifetime).
func (p *Plugin) VolumeFiles(ctx context.Context, pod *v1.Pod, src v1.VolumeProjection) ([]upstream.File, error) {
	switch {
	case src.ConfigMap != nil:
		data, err := p.object(ctx, "configmap", pod.Namespace, src.ConfigMap.Name)
		if err != nil {
			return nil, err
		}
		return projectKeys("configmap", pod.Namespace, src.ConfigMap.Name, data, src.ConfigMap.Items, ptr.Deref(src.ConfigMap.Optional, false))
	case src.Secret != nil:
		data, err := p.object(ctx, "secret", pod.Namespace, src.Secret.Name)
		if err != nil {
			return nil, err
		}
		return projectKeys("secret", pod.Namespace, src.Secret.Name, data, src.Secret.Items, ptr.Deref(src.Secret.Optional, false))
	case src.ServiceAccountToken != nil:
		tok, err := p.token(ctx, pod, src.ServiceAccountToken)
		if err != nil {
			return nil, err
		}
		return []upstream.File{{Path: src.ServiceAccountToken.Path, Data: []byte(tok)}}, nil
	}
	return nil, fmt.Errorf("projected volume source not supported by berth yet (configMap, secret, serviceAccountToken and downwardAPI are)")
}

// object reads a configMap's or secret's data (nil if it does not exist).
func (p *Plugin) object(ctx context.Context, kind, ns, name string) (map[string][]byte, error) {
	key := kind + "/" + ns + "/" + name
	now := p.cfg.Clock.Now()
	p.vols.mu.Lock()
	c, ok := p.vols.objects[key]
	p.vols.mu.Unlock()
	if ok && now.Sub(c.fetched) < objectTTL {
		return c.data, nil
	}
	var data map[string][]byte
	var err error
	switch kind {
	case "configmap":
		var cm *v1.ConfigMap
		if cm, err = p.client.getConfigMap(ctx, ns, name); err == nil {
			data = map[string][]byte{}
			for k, v := range cm.Data {
				data[k] = []byte(v)
			}
			for k, v := range cm.BinaryData {
				data[k] = v
			}
		}
	case "secret":
		var s *v1.Secret
		if s, err = p.client.getSecret(ctx, ns, name); err == nil {
			data = s.Data
			if data == nil {
				data = map[string][]byte{}
			}
		}
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%s %s/%s: %w", kind, ns, name, err)
	}
	p.vols.mu.Lock()
	p.vols.objects[key] = cachedObject{data: data, fetched: now}
	p.vols.mu.Unlock()
	return data, nil
}

// projectKeys lays an object's keys out as files: the items asked for,
// or every key.
func projectKeys(kind, ns, name string, data map[string][]byte, items []v1.KeyToPath, optional bool) ([]upstream.File, error) {
	if data == nil {
		if optional {
			return nil, nil
		}
		return nil, fmt.Errorf("%s %s/%s not found", kind, ns, name)
	}
	var out []upstream.File
	if len(items) == 0 {
		for k, v := range data {
			out = append(out, upstream.File{Path: k, Data: v})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("%s %s/%s has no key %q", kind, ns, name, it.Key)
		}
		f := upstream.File{Path: it.Path, Data: v}
		if it.Mode != nil {
			f.Mode = os.FileMode(*it.Mode)
		}
		out = append(out, f)
	}
	return out, nil
}

// token is a service account token for the pod, bound to it.
func (p *Plugin) token(ctx context.Context, pod *v1.Pod, src *v1.ServiceAccountTokenProjection) (string, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	expiration := ptr.Deref(src.ExpirationSeconds, 3600)
	key := fmt.Sprintf("%s/%s/%s/%d", pod.UID, sa, src.Audience, expiration)
	now := p.cfg.Clock.Now()
	p.vols.mu.Lock()
	c, ok := p.vols.tokens[key]
	p.vols.mu.Unlock()
	if ok && now.Before(c.refresh) {
		return c.token, nil
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &expiration,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	resp, err := p.client.createToken(ctx, pod.Namespace, sa, req)
	if err != nil {
		if ok && now.Before(c.expires) {
			return c.token, nil // still valid: try again next pass
		}
		return "", fmt.Errorf("token for service account %s/%s: %w", pod.Namespace, sa, err)
	}
	exp := resp.Status.ExpirationTimestamp.Time
	life := exp.Sub(now)
	p.vols.mu.Lock()
	p.vols.tokens[key] = cachedToken{token: resp.Status.Token, expires: exp, refresh: now.Add(life * 8 / 10)}
	p.vols.mu.Unlock()
	return resp.Status.Token, nil
}

// forgetVolumes drops the tokens of pods no longer on the node, and
// objects not asked for in a while.
func (p *Plugin) forgetVolumes(present map[types.UID]bool) {
	p.vols.mu.Lock()
	defer p.vols.mu.Unlock()
	for key := range p.vols.tokens {
		uid, _, _ := strings.Cut(key, "/")
		if !present[types.UID(uid)] {
			delete(p.vols.tokens, key)
		}
	}
	now := p.cfg.Clock.Now()
	for key, c := range p.vols.objects {
		if now.Sub(c.fetched) > 10*objectTTL {
			delete(p.vols.objects, key)
		}
	}
}
