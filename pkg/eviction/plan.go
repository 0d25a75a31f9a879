package eviction

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// reading is one signal as measured: what is available of its capacity,
// in bytes or inodes.
type reading struct {
	available, capacity int64
}

// state is what a pass hands the next: when each soft threshold began to
// be met (continuously), and when each pressure condition's thresholds
// were last met.
type state struct {
	softSince map[Signal]time.Time
	lastMet   map[bool]time.Time // by Signal.disk()
}

// decision is what one pass concluded.
type decision struct {
	next                         state
	memoryPressure, diskPressure bool
	// act is the threshold to relieve now (hard, or soft past its grace
	// period), memory first; nil when none is.
	act *Threshold
}

// decide compares the readings with the thresholds. Pure: no clock, no
// I/O. A pressure condition holds while any of its thresholds is met,
// grace periods aside, and for transition after the last time one was.
func decide(ths []Threshold, readings map[Signal]reading, prev state, now time.Time, transition time.Duration) decision {
	d := decision{next: state{softSince: map[Signal]time.Time{}, lastMet: map[bool]time.Time{}}}
	for k, t := range prev.lastMet {
		d.next.lastMet[k] = t
	}
	var active []Threshold
	for _, t := range ths {
		r, ok := readings[t.Signal]
		if !ok || !met(t, r, false) {
			continue
		}
		d.next.lastMet[t.Signal.disk()] = now
		if t.Hard {
			active = append(active, t)
			continue
		}
		since, ok := prev.softSince[t.Signal]
		if !ok {
			since = now
		}
		d.next.softSince[t.Signal] = since
		if now.Sub(since) >= t.GracePeriod {
			active = append(active, t)
		}
	}
	pressure := func(disk bool) bool {
		t, ok := d.next.lastMet[disk]
		return ok && now.Sub(t) < transition
	}
	d.memoryPressure, d.diskPressure = pressure(false), pressure(true)
	// Memory first (it cannot wait), then hard before soft, then in the
	// order of the signals.
	slices.SortStableFunc(active, func(a, b Threshold) int {
		key := func(t Threshold) [3]int {
			return [3]int{boolInt(t.Signal != MemoryAvailable), boolInt(!t.Hard), signalOrder(t.Signal)}
		}
		ka, kb := key(a), key(b)
		return slices.Compare(ka[:], kb[:])
	})
	if len(active) > 0 {
		d.act = &active[0]
	}
	return d
}

func signalOrder(s Signal) int { return slices.Index(observed, s) }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// met: available is below the threshold, or (withReclaim) below the
// threshold plus its minimum reclaim.
func met(t Threshold, r reading, withReclaim bool) bool {
	limit := t.Limit(r.capacity)
	if withReclaim {
		limit += t.reclaim(r.capacity)
	}
	return r.available < limit
}

// podUsage is what one pod uses of what the signals measure.
type podUsage struct {
	pod *v1.Pod
	// memory is the pod's working set; containers' by name.
	memory           int64
	containersMemory map[string]int64
	// disk is its writable layers, logs and disk-backed emptyDirs; inodes
	// the inodes of those.
	disk, inodes int64
}

// usage is what the pod uses of what signal s measures, and what it
// requested of it.
func (u podUsage) usage(s Signal) (used, requested int64) {
	switch s.resource() {
	case "memory":
		return u.memory, podRequest(u.pod, v1.ResourceMemory)
	case "inodes":
		return u.inodes, 0 // nothing requests inodes
	}
	return u.disk, podRequest(u.pod, v1.ResourceEphemeralStorage)
}

// rank orders the pods that may be evicted to relieve s, the first to go
// first, as kubelet ranks them: pods using more than they requested before
// those within their requests, then lower priority first, then the larger
// use beyond the request first. (BestEffort pods request nothing, so they
// lead; Guaranteed ones within their requests come last.) Critical pods
// and pods that no longer run are not ranked.
func rank(s Signal, pods []podUsage) []podUsage {
	var out []podUsage
	for _, p := range pods {
		if !Critical(p.pod) && active(p.pod) {
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b podUsage) int {
		au, ar := a.usage(s)
		bu, br := b.usage(s)
		if ax, bx := au > ar, bu > br; ax != bx {
			if ax {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(priority(a.pod), priority(b.pod)); c != 0 {
			return c
		}
		return cmp.Compare(bu-br, au-ar)
	})
	return out
}

// The priority from which a pod is critical, kubelet's
// SystemCriticalPriority, and the classes that have it.
const systemCriticalPriority = 2000000000

// Critical pods are never evicted, nor refused under pressure: a
// system-node-critical or system-cluster-critical priority class, or a
// priority that high. (kubelet also counts every static pod critical;
// berth does not, as its static pods are workloads.)
func Critical(p *v1.Pod) bool {
	switch p.Spec.PriorityClassName {
	case "system-node-critical", "system-cluster-critical":
		return true
	}
	return priority(p) >= systemCriticalPriority
}

func priority(p *v1.Pod) int32 {
	if p.Spec.Priority != nil {
		return *p.Spec.Priority
	}
	return 0
}

func active(p *v1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase != v1.PodSucceeded && p.Status.Phase != v1.PodFailed
}

// podRequest is what the pod requests of r: its app containers and
// sidecars together, or its largest plain init container if that is more.
func podRequest(p *v1.Pod, r v1.ResourceName) int64 {
	var sum, initMax int64
	for _, c := range p.Spec.InitContainers {
		q := c.Resources.Requests[r]
		if c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways {
			sum += q.Value()
		} else {
			initMax = max(initMax, q.Value())
		}
	}
	for _, c := range p.Spec.Containers {
		q := c.Resources.Requests[r]
		sum += q.Value()
	}
	return max(sum, initMax)
}

// message is the evicted pod's status message and event, as kubelet
// words it.
func message(t Threshold, r reading, u podUsage) string {
	res := t.Signal.resource()
	var b strings.Builder
	fmt.Fprintf(&b, "The node was low on resource: %s. Threshold quantity: %s, available: %s. ",
		res, amount(res, t.Limit(r.capacity)), amount(res, r.available))
	if res == "memory" {
		for _, c := range u.pod.Spec.Containers {
			used, ok := u.containersMemory[c.Name]
			req := c.Resources.Requests[v1.ResourceMemory]
			if ok && used > req.Value() {
				fmt.Fprintf(&b, "Container %s was using %s, request is %s, has larger consumption of %s. ",
					c.Name, amount(res, used), req.String(), res)
			}
		}
		return b.String()
	}
	used, req := u.usage(t.Signal)
	fmt.Fprintf(&b, "Pod was using %s, request is %s, has larger consumption of %s. ", amount(res, used), amount(res, req), res)
	return b.String()
}

// amount is a number of inodes, or bytes in whole KiB (a threshold of
// 10 % is rarely a round number of bytes).
func amount(res string, n int64) string {
	if res == "inodes" {
		return strconv.FormatInt(n, 10)
	}
	return resource.NewQuantity(n&^1023, resource.BinarySI).String()
}

// gracePeriod is the time an evicted pod gets to stop: a hard threshold
// allows none beyond a second (kubelet's), a soft one the pod's own, at
// most maxPod.
func gracePeriod(t Threshold, p *v1.Pod, maxPod int64) int64 {
	if t.Hard {
		return 1
	}
	if g := p.Spec.TerminationGracePeriodSeconds; g != nil {
		return min(*g, maxPod)
	}
	return maxPod
}
