package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Health-gated updates: a pod that opts in with annotationHealthGated is
// updated only if its new version becomes Ready in time and stays Ready
// for annotationMinReady (a container without a readiness probe is Ready
// the moment it runs, even one about to crash). If it does not, or
// crash-loops, the agent goes back to the last version that was Ready and
// does not try the failed one again until the desired pod changes.
// Without the annotation an update simply replaces the pod, as kubelet.
const (
	annotationHealthGated = "berth.io/health-gated"
	// annotationReadyDeadline is how long a new version has to become
	// Ready (a Go duration, default 5m).
	annotationReadyDeadline = "berth.io/ready-deadline"
	defaultReadyDeadline    = 5 * time.Minute
	// annotationMinReady is how long the new version must stay Ready to
	// be kept (a Go duration, default 10s).
	annotationMinReady = "berth.io/min-ready"
	defaultMinReady    = 10 * time.Second
	// conditionRolledBack is set on a pod that runs its previous version
	// because the desired one failed.
	conditionRolledBack v1.PodConditionType = "berth.io/RolledBack"
)

// gateRecord is what the agent keeps on disk about a pod's versions, so
// that a restart in the middle of a trial or a rollback goes on with it.
type gateRecord struct {
	// Good is the last version seen Ready.
	Good *v1.Pod `json:"good,omitempty"`
	// Trying is the gated version on trial, since Since.
	Trying types.UID `json:"trying,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	// ReadySince is when the version on trial became Ready, if it is.
	ReadySince time.Time `json:"readySince,omitzero"`
	// Rejected is the version that failed, and why.
	Rejected types.UID `json:"rejected,omitempty"`
	Reason   string    `json:"reason,omitempty"`
}

// runningView is what the gate needs of the version last published.
type runningView struct {
	pod          *v1.Pod
	ready        bool
	crashLooping bool
}

// gateDecision is what to run and what to remember.
type gateDecision struct {
	run    *v1.Pod
	record gateRecord
	// event says what happened this time ("" for nothing new).
	event string
	// wait is when the trial's deadline passes.
	wait time.Duration
}

// gate decides which version of a pod runs. Pure: no I/O, no clock.
func gate(rec gateRecord, desired *v1.Pod, cur runningView, now time.Time) gateDecision {
	d := gateDecision{run: desired, record: rec}
	if desired == nil {
		return d
	}
	r := &d.record
	onTrial := func(p *v1.Pod) bool { return p != nil && r.Trying != "" && p.UID == r.Trying }
	if cur.pod != nil && cur.ready && !onTrial(cur.pod) && (r.Good == nil || r.Good.UID != cur.pod.UID) {
		r.Good = cur.pod
	}
	if r.Rejected != "" && r.Rejected != desired.UID {
		r.Rejected, r.Reason = "", "" // the desired pod changed: a new try
	}
	if r.Rejected == desired.UID && r.Good != nil {
		d.run = r.Good
		return d
	}
	if !gated(desired) || r.Good == nil || r.Good.UID == desired.UID {
		r.Trying, r.Since, r.ReadySince = "", time.Time{}, time.Time{}
		return d
	}
	if r.Trying != desired.UID {
		r.Trying, r.Since, r.ReadySince = desired.UID, now, time.Time{}
	}
	deadline, minReady := duration(desired, annotationReadyDeadline, defaultReadyDeadline), duration(desired, annotationMinReady, defaultMinReady)
	reason := ""
	switch {
	case onTrial(cur.pod) && cur.crashLooping:
		reason = "its containers crash-loop"
	case onTrial(cur.pod) && cur.ready:
		if r.ReadySince.IsZero() {
			r.ReadySince = now
		}
		if left := r.ReadySince.Add(minReady).Sub(now); left > 0 {
			d.wait = left
			return d
		}
		r.Good, r.Trying, r.Since, r.ReadySince = desired, "", time.Time{}, time.Time{}
		d.event = fmt.Sprintf("update to version %s went through: it stayed Ready for %s", desired.UID, minReady)
		return d
	case !now.Before(r.Since.Add(deadline)):
		reason = fmt.Sprintf("it did not become Ready within %s", deadline)
	}
	if reason == "" {
		r.ReadySince = time.Time{}
		d.wait = r.Since.Add(deadline).Sub(now)
		return d
	}
	r.Rejected, r.Reason, r.Trying, r.Since, r.ReadySince = desired.UID, reason, "", time.Time{}, time.Time{}
	d.run = r.Good
	d.event = fmt.Sprintf("update to version %s rolled back to version %s: %s", desired.UID, r.Good.UID, reason)
	return d
}

func gated(p *v1.Pod) bool { return p.Annotations[annotationHealthGated] == "true" }

func duration(p *v1.Pod, annotation string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(p.Annotations[annotation]); err == nil && d > 0 {
		return d
	}
	return def
}

// viewOf sums up a published pod for the gate.
func viewOf(p *v1.Pod, st v1.PodStatus) runningView {
	v := runningView{pod: p}
	for _, c := range st.Conditions {
		if c.Type == v1.PodReady && c.Status == v1.ConditionTrue {
			v.ready = true
		}
	}
	for _, cs := range append(append([]v1.ContainerStatus(nil), st.InitContainerStatuses...), st.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
			v.crashLooping = true
		}
	}
	return v
}

// gatePath is where a pod's record lives; names are DNS labels and
// subdomains, so they make safe file names.
func (m *Manager) gatePath(namespace, name string) string {
	return filepath.Join(m.cfg.PodDir, gatesDir, namespace+"_"+name+".json")
}

func (m *Manager) loadGate(namespace, name string) (gateRecord, error) {
	var rec gateRecord
	if m.cfg.PodDir == "" {
		return rec, nil
	}
	data, err := os.ReadFile(m.gatePath(namespace, name))
	if errors.Is(err, os.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return gateRecord{}, fmt.Errorf("%s: %w", m.gatePath(namespace, name), err)
	}
	return rec, nil
}

func (m *Manager) saveGate(namespace, name string, rec gateRecord) error {
	if m.cfg.PodDir == "" {
		return nil
	}
	path := m.gatePath(namespace, name)
	if rec.Good == nil && rec.Rejected == "" && rec.Trying == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return renameio.WriteFile(path, data, 0o600)
}

// gatesDir, below PodDir, holds the gate records.
const gatesDir = "gates"
