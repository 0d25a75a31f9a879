package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/renameio/v2"
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

// volumeCache remembers objects and tokens for VolumeFiles and
// ObjectData. It is journalled (root-only, as the pod journal), so that
// pods from the API start again from it after a restart while the API
// server is unreachable: the last data read and tokens that have not
// expired are used for as long as it stays unreachable.
type volumeCache struct {
	mu      sync.Mutex
	journal string // "" in tests: nothing kept on disk
	objects map[string]cachedObject
	tokens  map[string]cachedToken
}

type cachedObject struct {
	Data    map[string][]byte `json:"data,omitempty"`   // a secret's data, a configMap's string data
	Binary  map[string][]byte `json:"binary,omitempty"` // a configMap's binaryData
	Missing bool              `json:"missing,omitempty"`
	fetched time.Time         // zero when read from the journal
	used    time.Time
}

type cachedToken struct {
	Token   string    `json:"token"`
	Refresh time.Time `json:"refresh"` // 80 % of its lifetime, as kubelet renews
	Expires time.Time `json:"expires"`
}

type volumeJournal struct {
	Objects map[string]cachedObject `json:"objects"`
	Tokens  map[string]cachedToken  `json:"tokens"`
}

// load fills the cache from its journal.
func (c *volumeCache) load(now time.Time) error {
	data, err := os.ReadFile(c.journal)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	var j volumeJournal
	if err := json.Unmarshal(data, &j); err != nil {
		return fmt.Errorf("%s: %w", c.journal, err)
	}
	for k, o := range j.Objects {
		o.used = now
		c.objects[k] = o
	}
	for k, t := range j.Tokens {
		c.tokens[k] = t
	}
	return nil
}

// save writes the journal; c.mu is held.
func (c *volumeCache) save() error {
	if c.journal == "" {
		return nil
	}
	data, err := json.Marshal(volumeJournal{Objects: c.objects, Tokens: c.tokens})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.journal), 0o700); err != nil {
		return err
	}
	return renameio.WriteFile(c.journal, data, 0o600)
}

// VolumeFiles is upstream.VolumeSource's: configMaps and secrets read
// through the API (kept for objectTTL), service account tokens bound to
// the pod (renewed at 80 % of their lifetime).
func (p *Plugin) VolumeFiles(ctx context.Context, pod *v1.Pod, src v1.VolumeProjection) ([]upstream.File, error) {
	switch {
	case src.ConfigMap != nil:
		o, err := p.object(ctx, upstream.ConfigMap, pod.Namespace, src.ConfigMap.Name)
		if err != nil {
			return nil, err
		}
		return projectKeys(upstream.ConfigMap, pod.Namespace, src.ConfigMap.Name, o.files(), src.ConfigMap.Items, ptr.Deref(src.ConfigMap.Optional, false))
	case src.Secret != nil:
		o, err := p.object(ctx, upstream.Secret, pod.Namespace, src.Secret.Name)
		if err != nil {
			return nil, err
		}
		return projectKeys(upstream.Secret, pod.Namespace, src.Secret.Name, o.files(), src.Secret.Items, ptr.Deref(src.Secret.Optional, false))
	case src.ServiceAccountToken != nil:
		tok, err := p.token(ctx, pod, src.ServiceAccountToken)
		if err != nil {
			return nil, err
		}
		return []upstream.File{{Path: src.ServiceAccountToken.Path, Data: []byte(tok)}}, nil
	}
	return nil, fmt.Errorf("projected volume source not supported by berth yet (configMap, secret, serviceAccountToken and downwardAPI are)")
}

// ObjectData is upstream.ObjectSource's, from the same cache as volumes.
func (p *Plugin) ObjectData(ctx context.Context, pod *v1.Pod, kind upstream.ObjectKind, name string) (map[string][]byte, error) {
	o, err := p.object(ctx, kind, pod.Namespace, name)
	if err != nil || o.Missing {
		return nil, err
	}
	if o.Data == nil {
		return map[string][]byte{}, nil
	}
	return o.Data, nil
}

// files are all keys of an object as a volume has them (nil: missing).
func (o cachedObject) files() map[string][]byte {
	if o.Missing {
		return nil
	}
	out := make(map[string][]byte, len(o.Data)+len(o.Binary))
	maps.Copy(out, o.Data)
	maps.Copy(out, o.Binary)
	return out
}

// object reads a configMap or secret. When the API server cannot answer,
// the last data read stand: the node keeps running what it was given.
func (p *Plugin) object(ctx context.Context, kind upstream.ObjectKind, ns, name string) (cachedObject, error) {
	key := string(kind) + "/" + ns + "/" + name
	now := p.cfg.Clock.Now()
	p.vols.mu.Lock()
	c, ok := p.vols.objects[key]
	if ok {
		c.used = now
		p.vols.objects[key] = c
	}
	p.vols.mu.Unlock()
	if ok && !c.fetched.IsZero() && now.Sub(c.fetched) < objectTTL {
		return c, nil
	}
	var o cachedObject
	var err error
	switch kind {
	case upstream.ConfigMap:
		var cm *v1.ConfigMap
		if cm, err = p.client.getConfigMap(ctx, ns, name); err == nil {
			o.Data = map[string][]byte{}
			for k, v := range cm.Data {
				o.Data[k] = []byte(v)
			}
			o.Binary = cm.BinaryData
		}
	case upstream.Secret:
		var s *v1.Secret
		if s, err = p.client.getSecret(ctx, ns, name); err == nil {
			o.Data = s.Data
		}
	default:
		return o, fmt.Errorf("%s %s/%s: unknown kind", kind, ns, name)
	}
	switch {
	case apierrors.IsNotFound(err):
		o.Missing = true
	case err != nil && ok:
		// Asked again in objectTTL: an unreachable API server costs each
		// pass a timeout at most once a minute.
		c.fetched = now
		p.vols.mu.Lock()
		p.vols.objects[key] = c
		p.vols.mu.Unlock()
		return c, nil
	case err != nil:
		return o, fmt.Errorf("%s %s/%s: %w", kind, ns, name, err)
	}
	o.fetched, o.used = now, now
	p.vols.mu.Lock()
	defer p.vols.mu.Unlock()
	p.vols.objects[key] = o
	if !ok || !sameObject(c, o) {
		if err := p.vols.save(); err != nil {
			p.cfg.Log.Warn("journal of configMaps and secrets not written", "err", err)
		}
	}
	return o, nil
}

func sameObject(a, b cachedObject) bool {
	eq := func(x, y []byte) bool { return bytes.Equal(x, y) }
	return a.Missing == b.Missing && maps.EqualFunc(a.Data, b.Data, eq) && maps.EqualFunc(a.Binary, b.Binary, eq)
}

// projectKeys lays an object's keys out as files: the items asked for,
// or every key.
func projectKeys(kind upstream.ObjectKind, ns, name string, data map[string][]byte, items []v1.KeyToPath, optional bool) ([]upstream.File, error) {
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
	if ok && now.Before(c.Refresh) {
		return c.Token, nil
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
		if ok && now.Before(c.Expires) {
			return c.Token, nil // still valid: try again next pass
		}
		return "", fmt.Errorf("token for service account %s/%s: %w", pod.Namespace, sa, err)
	}
	exp := resp.Status.ExpirationTimestamp.Time
	life := exp.Sub(now)
	p.vols.mu.Lock()
	p.vols.tokens[key] = cachedToken{Token: resp.Status.Token, Expires: exp, Refresh: now.Add(life * 8 / 10)}
	if err := p.vols.save(); err != nil {
		p.cfg.Log.Warn("journal of configMaps and secrets not written", "err", err)
	}
	p.vols.mu.Unlock()
	return resp.Status.Token, nil
}

// forgetVolumes drops the tokens of pods no longer on the node, and
// objects not asked for in a while.
func (p *Plugin) forgetVolumes(present map[types.UID]bool) {
	p.vols.mu.Lock()
	defer p.vols.mu.Unlock()
	n := len(p.vols.tokens) + len(p.vols.objects)
	for key := range p.vols.tokens {
		uid, _, _ := strings.Cut(key, "/")
		if !present[types.UID(uid)] {
			delete(p.vols.tokens, key)
		}
	}
	now := p.cfg.Clock.Now()
	for key, c := range p.vols.objects {
		if now.Sub(c.used) > 10*objectTTL {
			delete(p.vols.objects, key)
		}
	}
	if len(p.vols.tokens)+len(p.vols.objects) != n {
		if err := p.vols.save(); err != nil {
			p.cfg.Log.Warn("journal of configMaps and secrets not written", "err", err)
		}
	}
}
