package agent

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// sweepInterval is how often sweepOrphans runs: a directory listing and
// a ListPodSandbox.
const sweepInterval = 10 * time.Second

// sweepOrphans removes what the agent keeps outside the runtime for pod
// versions that are neither wanted nor in the runtime: their cgroups,
// volume directories and log directories. A worker cleans these up when
// it tears a version down; a crash of berthd between making them and
// creating the version's sandbox leaves them with nothing that would, as
// kubelet's housekeeping knows. What is on disk is listed before what is
// active, so that a version made meanwhile is seen as wanted.
func (m *Manager) sweepOrphans(ctx context.Context) {
	m.mu.Lock()
	adopted := m.adopted
	m.mu.Unlock()
	if !adopted {
		return // until then the runtime's pods may still be claimed
	}
	onDisk := map[types.UID][]func(){}
	for uid, remove := range m.podCgroups() {
		onDisk[uid] = append(onDisk[uid], remove)
	}
	if m.cfg.PodDir != "" {
		entries, _ := os.ReadDir(m.cfg.PodDir)
		for _, e := range entries {
			if uid := types.UID(e.Name()); e.IsDir() && e.Name() != gatesDir {
				onDisk[uid] = append(onDisk[uid], func() {
					if err := m.removeVolumes(uid); err != nil {
						m.cfg.Log.Warn("remove an orphaned pod's volumes", "uid", uid, "err", err)
					}
				})
			}
		}
	}
	if m.cfg.LogDir != "" {
		entries, _ := os.ReadDir(m.cfg.LogDir)
		for _, e := range entries {
			f := strings.Split(e.Name(), "_")
			if !e.IsDir() || len(f) != 3 {
				continue
			}
			dir := filepath.Join(m.cfg.LogDir, e.Name())
			onDisk[types.UID(f[2])] = append(onDisk[types.UID(f[2])], func() {
				m.unlinkPodLogs(f[1], f[0], dir)
				m.removeLogs(dir)
			})
		}
	}
	if len(onDisk) == 0 {
		return
	}
	// Any client's: a crictl pod may log below LogDir too.
	active, err := m.runningUIDs(ctx, true)
	if err != nil {
		return // asked again at the next sweep
	}
	m.mu.Lock()
	for _, w := range m.workers {
		if p := w.desired(); p != nil {
			active[p.UID] = true
		}
	}
	m.mu.Unlock()
	for uid := range active {
		active[types.UID(strings.ReplaceAll(string(uid), "_", "-"))] = true // as podCgroups reads systemd's names
	}
	for uid, removes := range onDisk {
		if active[uid] {
			continue
		}
		m.cfg.Log.Info("removing what an orphaned pod version left", "uid", uid)
		for _, remove := range removes {
			remove()
		}
	}
}

// podCgroups are the pod cgroups below the QoS hierarchy, by UID, each
// with its removal.
func (m *Manager) podCgroups() map[types.UID]func() {
	if len(m.rootCgroup()) == 0 {
		return nil
	}
	// On cgroup v1 every hierarchy is looked at: a berthd killed while it
	// made a pod's cgroup may have made it in the first few only.
	mnts := []string{"/sys/fs/cgroup"}
	if !cgroups.IsCgroup2UnifiedMode() {
		mnts = nil
		entries, _ := os.ReadDir("/sys/fs/cgroup")
		for _, e := range entries {
			if e.IsDir() { // not the symlinks (cpu -> cpu,cpuacct)
				mnts = append(mnts, filepath.Join("/sys/fs/cgroup", e.Name()))
			}
		}
	}
	out := map[types.UID]func(){}
	for _, mnt := range mnts {
		m.listPodCgroups(mnt, out)
	}
	return out
}

// listPodCgroups adds the pod cgroups of the hierarchy at mnt to out.
func (m *Manager) listPodCgroups(mnt string, out map[types.UID]func()) {
	for _, qos := range []v1.PodQOSClass{v1.PodQOSGuaranteed, v1.PodQOSBurstable, v1.PodQOSBestEffort} {
		// The pod cgroup's leaf name with the UID left out: "pod" or
		// "kubepods-burstable-pod" and ".slice".
		leaf := path.Base(m.cgroupDir(m.podCgroup(qos, "")))
		prefix, suffix := leaf, ""
		if m.cfg.SystemdCgroups {
			prefix, suffix = strings.TrimSuffix(leaf, ".slice"), ".slice"
		}
		entries, _ := os.ReadDir(filepath.Join(mnt, m.cgroupDir(m.qosCgroup(qos))))
		for _, e := range entries {
			id, ok := strings.CutPrefix(e.Name(), prefix)
			if id, ok2 := strings.CutSuffix(id, suffix); ok && ok2 && id != "" && e.IsDir() {
				// systemd's names have "_" for the UID's "-"; sweepOrphans
				// compares UIDs so escaped too.
				uid := types.UID(strings.ReplaceAll(id, "_", "-"))
				out[uid] = func() {
					if err := m.removePodCgroup(uid); err != nil {
						m.cfg.Log.Warn("remove an orphaned pod cgroup", "uid", uid, "err", err)
					}
				}
			}
		}
	}
}
