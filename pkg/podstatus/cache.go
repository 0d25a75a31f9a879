// Package podstatus keeps the one copy of every pod's status that the
// agent's readers share: the local API, upstream reporters and metrics read
// it here instead of asking the pod workers, and wait on Changed instead of
// polling.
package podstatus

import (
	"sort"
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"

	v1 "k8s.io/api/core/v1"
)

// Cache holds pods by namespace/name. The zero value is not usable; call
// New.
type Cache struct {
	mu      sync.Mutex
	pods    map[string]*v1.Pod
	version uint64
	changed chan struct{}
}

// New returns an empty cache.
func New() *Cache {
	return &Cache{pods: map[string]*v1.Pod{}, changed: make(chan struct{})}
}

// Key is the cache's name for a pod.
func Key(namespace, name string) string { return namespace + "/" + name }

// Set stores a copy of pod; a pod equal to the stored one changes nothing
// (no new version, no notification), so writers may set on every pass.
func (c *Cache) Set(pod *v1.Pod) {
	key := Key(pod.Namespace, pod.Name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.pods[key]; ok && equality.Semantic.DeepEqual(old, pod) {
		return
	}
	c.pods[key] = pod.DeepCopy()
	c.bumpLocked()
}

// Delete forgets a pod; deleting an unknown pod changes nothing.
func (c *Cache) Delete(namespace, name string) {
	key := Key(namespace, name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pods[key]; !ok {
		return
	}
	delete(c.pods, key)
	c.bumpLocked()
}

func (c *Cache) bumpLocked() {
	c.version++
	close(c.changed)
	c.changed = make(chan struct{})
}

// Get returns a copy of one pod.
func (c *Cache) Get(namespace, name string) (v1.Pod, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pods[Key(namespace, name)]
	if !ok {
		return v1.Pod{}, false
	}
	return *p.DeepCopy(), true
}

// List returns copies of all pods sorted by namespace and name, and the
// version they are at.
func (c *Cache) List() ([]v1.Pod, uint64) {
	c.mu.Lock()
	out := make([]v1.Pod, 0, len(c.pods))
	for _, p := range c.pods {
		out = append(out, *p.DeepCopy())
	}
	v := c.version
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, v
}

// Pods is List without the version.
func (c *Cache) Pods() []v1.Pod {
	pods, _ := c.List()
	return pods
}

// Changed returns a channel closed at the next change after the call, and
// the version current at the call: a reader lists, then waits on the
// channel, and never misses a change. Nothing blocks on slow readers.
func (c *Cache) Changed() (<-chan struct{}, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed, c.version
}
