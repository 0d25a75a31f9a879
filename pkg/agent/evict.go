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

	"github.com/berth-project/berth/pkg/events"
	"github.com/berth-project/berth/pkg/podstatus"
)

// evictionRecord says that a pod's version was evicted, why, and with
// what grace period. It is kept next to the pod's volumes, so that a
// restarted agent does not start the pod again, and goes with them.
type evictionRecord struct {
	// Reason is the pod's status reason: Evicted, or Terminated (a node
	// shutdown, which is not recorded on disk: the pod runs again after
	// the reboot).
	Reason  string    `json:"reason,omitempty"`
	Message string    `json:"message"`
	Grace   int64     `json:"grace"`
	At      time.Time `json:"at"`
	// rejected: the pod never ran, refused at admission (not recorded
	// on disk: admission runs again after a restart, as kubelet's).
	rejected bool
}

func (m *Manager) evictionPath(uid types.UID) string {
	return filepath.Join(m.cfg.PodDir, string(uid), "evicted.json")
}

// Evict stops a pod's version for good, as kubelet's eviction manager
// does: its containers get grace seconds, nothing restarts, and it stays
// Failed with reason Evicted and message until its spec (its UID)
// changes or it is removed — also across restarts of berthd.
func (m *Manager) Evict(namespace, name string, uid types.UID, message string, grace int64) error {
	return m.stopForGood(namespace, name, uid, &evictionRecord{Reason: reasonEvicted, Message: message, Grace: grace, At: m.clock.Now()}, true)
}

// Terminate stops a pod's version as the node shuts down, as kubelet's
// graceful node shutdown does: within grace seconds, nothing restarts,
// and it is Failed with reason Terminated until berthd starts again.
func (m *Manager) Terminate(namespace, name string, uid types.UID, message string, grace int64) error {
	return m.stopForGood(namespace, name, uid, &evictionRecord{Reason: reasonTerminated, Message: message, Grace: grace, At: m.clock.Now()}, false)
}

// The reasons of a pod the node stopped for good.
const (
	reasonEvicted    = "Evicted"
	reasonTerminated = "Terminated"
)

func (m *Manager) stopForGood(namespace, name string, uid types.UID, rec *evictionRecord, persist bool) error {
	key := podstatus.Key(namespace, name)
	m.mu.Lock()
	w := m.workers[key]
	m.mu.Unlock()
	if w == nil {
		return fmt.Errorf("stop %s: no such pod", key)
	}
	if p := w.desired(); p == nil || p.UID != uid {
		return fmt.Errorf("stop %s: version %s is not the one running", key, uid)
	}
	if persist && m.cfg.PodDir != "" {
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		path := m.evictionPath(uid)
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return fmt.Errorf("evict %s: %w", key, err)
		}
		if err := renameio.WriteFile(path, data, 0o600); err != nil {
			return fmt.Errorf("evict %s: %w", key, err)
		}
	}
	w.mu.Lock()
	w.evictions[uid] = rec
	w.mu.Unlock()
	m.events.Record(events.Pod{Namespace: namespace, Name: name, UID: uid}, "", v1.EventTypeWarning, rec.Reason, rec.Message)
	w.wakeup()
	return nil
}

// eviction is the record of the pod's version, read from disk the first
// time it is asked for.
func (w *worker) eviction(pod *v1.Pod) *evictionRecord {
	if pod == nil {
		return nil
	}
	w.mu.Lock()
	rec, known := w.evictions[pod.UID]
	w.mu.Unlock()
	if known || w.m.cfg.PodDir == "" {
		return rec
	}
	data, err := os.ReadFile(w.m.evictionPath(pod.UID))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		w.m.cfg.Log.Warn("read the pod's eviction record", "pod", w.key, "err", err)
		return nil // asked again at the next pass
	default:
		rec = &evictionRecord{}
		if err := json.Unmarshal(data, rec); err != nil {
			// Written atomically, so only a hostile or broken disk gets
			// here: the pod stays evicted, for want of a better message.
			rec = &evictionRecord{Message: "The pod was evicted (unreadable record: " + err.Error() + ")"}
		}
		if rec.Reason == "" {
			rec.Reason = reasonEvicted
		}
	}
	w.mu.Lock()
	w.evictions[pod.UID] = rec
	w.mu.Unlock()
	return rec
}
