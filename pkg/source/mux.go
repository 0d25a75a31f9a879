package source

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/google/renameio/v2"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/berth-project/berth/pkg/manifest"
)

// Mux merges the manifest directory with at most one upstream plugin into
// the one desired set the agent runs. It is the plugin's upstream.Sink.
//
// A pod name belongs to one source at a time: the source already running
// it keeps it; of two new claims the manifest file wins (static pods never
// wait for an upstream). A manifest file that loses is refused whole, as
// for two files; a pod the upstream loses is refused alone. Both refusals
// are reported where the user looks: /manifests and /upstream.
type Mux struct {
	cfg MuxConfig

	mu        sync.Mutex
	dirRead   bool
	files     []manifest.File // as the directory's memory resolved them
	known     bool            // the upstream's set is known (journal or plugin)
	upstream  []*v1.Pod       // the upstream's last set, before conflicts
	owner     map[string]string
	resolved  []manifest.File // files after conflicts with the upstream
	status    UpstreamStatus
	lastApply []*v1.Pod
	applied   bool
	// lastStatic is what Static was last given.
	lastStatic []*v1.Pod
}

// MuxConfig is what a Mux needs.
type MuxConfig struct {
	// Apply receives the merged set whenever it changes; complete says
	// every source's set is known, so pods of the runtime that are in
	// none of them may be torn down. Calls are serialised. After an
	// error the next reading of any source applies the set again.
	Apply func(pods []*v1.Pod, complete bool) error
	// Static, if set, receives the static pods (the files') whenever they
	// change, for mirror pods.
	Static func(pods []*v1.Pod)
	// Upstream names the plugin, "" for none.
	Upstream string
	// Journal is the file the upstream's last set is kept in.
	Journal string
	Clock   func() time.Time
	Log     *slog.Logger
}

const (
	ownerFile     = "file"
	ownerUpstream = "upstream"
)

// NewMux returns a mux; with an upstream, the journal's set (if any) is
// the upstream's set until the plugin hands over its own.
func NewMux(cfg MuxConfig) *Mux {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	m := &Mux{cfg: cfg, owner: map[string]string{}, status: UpstreamStatus{Plugin: cfg.Upstream}}
	if cfg.Upstream == "" {
		m.known = true
		return m
	}
	m.status.Connection = "connecting"
	pods, err := readJournal(cfg.Journal)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		// Without it the upstream's pods are unknown: none is torn down.
		cfg.Log.Error("upstream journal unreadable: waiting for the upstream", "file", cfg.Journal, "err", err)
	default:
		m.known, m.upstream = true, pods
		m.status.FromJournal = true
		cfg.Log.Info("upstream pods restored from the journal", "plugin", cfg.Upstream, "pods", len(pods), "file", cfg.Journal)
	}
	return m
}

// Files takes a reading of the manifest directory.
func (m *Mux) Files(files []manifest.File) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files, m.dirRead = files, true
	m.mergeLocked()
}

// Pods is upstream.Sink's: the plugin's complete set.
func (m *Mux) Pods(pods []*v1.Pod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := !m.known || m.status.FromJournal || !equality.Semantic.DeepEqual(m.upstream, pods)
	m.known, m.upstream = true, pods
	m.status.FromJournal = false
	m.status.LastSync = m.cfg.Clock()
	if changed && m.cfg.Journal != "" {
		if err := writeJournal(m.cfg.Journal, pods); err != nil {
			// The pods still run; only a restart while disconnected
			// would miss them.
			m.cfg.Log.Warn("upstream journal not written", "file", m.cfg.Journal, "err", err)
		}
	}
	m.mergeLocked()
}

// Connected is upstream.Sink's: the plugin's connection state.
func (m *Mux) Connected(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	state, msg := "connected", ""
	if err != nil {
		state, msg = "disconnected", err.Error()
	}
	if state != m.status.Connection || msg != m.status.Error {
		if err != nil {
			m.cfg.Log.Warn("upstream unreachable: its pods keep running", "plugin", m.cfg.Upstream, "err", err)
		} else if m.status.Connection == "disconnected" {
			m.cfg.Log.Info("upstream reachable again", "plugin", m.cfg.Upstream)
		}
		m.status.Since = m.cfg.Clock()
	}
	m.status.Connection, m.status.Error = state, msg
}

// Manifests is the directory's last reading after conflicts with the
// upstream: what /manifests shows.
func (m *Mux) Manifests() []manifest.File {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]manifest.File(nil), m.resolved...)
}

// Upstream is the plugin's state: what /upstream shows.
func (m *Mux) Upstream() UpstreamStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.status
	s.Pods = append([]PodRef(nil), s.Pods...)
	s.Refused = append([]string(nil), s.Refused...)
	return s
}

// mergeLocked resolves conflicts and applies the set if it changed.
// Nothing is applied before the directory was read once, so that a
// restarted agent never sees its static pods missing.
func (m *Mux) mergeLocked() {
	if !m.dirRead {
		return
	}
	files := make([]manifest.File, len(m.files))
	copy(files, m.files)
	owner := map[string]string{}
	claimFile := func(f *manifest.File) {
		for _, p := range f.Pods {
			if owner[key(p)] != "" {
				f.Err = fmt.Errorf("%s: pod %s is already defined by the %s upstream", f.Path, key(p), m.cfg.Upstream)
				f.Pods = nil
				return
			}
		}
		for _, p := range f.Pods {
			owner[key(p)] = ownerFile
		}
	}
	var ups []*v1.Pod
	var refused []string
	claimUpstream := func(p *v1.Pod) {
		if owner[key(p)] == ownerFile {
			refused = append(refused, fmt.Sprintf("pod %s is already defined in %s", key(p), fileOf(files, p)))
			return
		}
		owner[key(p)] = ownerUpstream
		ups = append(ups, p)
	}
	// Those already running keep their pods: upstream pods first, then
	// files, then the newcomers, files first.
	var fresh []*v1.Pod
	for _, p := range m.upstream {
		if m.owner[key(p)] == ownerUpstream {
			claimUpstream(p)
		} else {
			fresh = append(fresh, p)
		}
	}
	for i := range files {
		claimFile(&files[i])
	}
	for _, p := range fresh {
		claimUpstream(p)
	}
	m.owner, m.resolved = owner, files

	m.status.Pods = m.status.Pods[:0]
	for _, p := range ups {
		m.status.Pods = append(m.status.Pods, PodRef{Namespace: p.Namespace, Name: p.Name, UID: string(p.UID)})
	}
	if len(refused) > 0 && !equality.Semantic.DeepEqual(refused, m.status.Refused) {
		for _, r := range refused {
			m.cfg.Log.Error("upstream pod refused", "plugin", m.cfg.Upstream, "err", r)
		}
	}
	m.status.Refused = refused

	var pods []*v1.Pod
	for _, f := range files {
		pods = append(pods, f.Pods...)
	}
	if m.cfg.Static != nil && !samePods(pods, m.lastStatic) {
		m.lastStatic = pods
		m.cfg.Static(append([]*v1.Pod(nil), pods...))
	}
	pods = append(pods, ups...)
	sort.Slice(pods, func(i, j int) bool { return key(pods[i]) < key(pods[j]) })
	if m.applied && m.known == m.status.Complete && samePods(pods, m.lastApply) {
		return
	}
	if err := m.cfg.Apply(pods, m.known); err != nil {
		m.cfg.Log.Warn("apply pods", "err", err)
		m.applied = false
		return
	}
	m.applied, m.lastApply, m.status.Complete = true, pods, m.known
}

func samePods(a, b []*v1.Pod) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !equality.Semantic.DeepEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

func fileOf(files []manifest.File, p *v1.Pod) string {
	for _, f := range files {
		for _, fp := range f.Pods {
			if key(fp) == key(p) {
				return f.Path
			}
		}
	}
	return "a manifest file"
}

// UpstreamStatus is the plugin's state as berth shows it (/upstream,
// berthctl status).
type UpstreamStatus struct {
	Plugin string `json:"plugin"`
	// Connection is connecting (nothing heard yet), connected or
	// disconnected (Error says why).
	Connection string    `json:"connection"`
	Error      string    `json:"error,omitempty"`
	Since      time.Time `json:"since,omitzero"`
	// LastSync is when the plugin last handed over its set.
	LastSync time.Time `json:"lastSync,omitzero"`
	// FromJournal: berth runs the set kept in the journal, as the plugin
	// has not handed over one since berthd started.
	FromJournal bool `json:"fromJournal,omitempty"`
	// Complete: the upstream's set is known (from the plugin or the
	// journal), so pods no source wants have been torn down.
	Complete bool     `json:"complete"`
	Pods     []PodRef `json:"pods,omitempty"`
	// Refused lists the upstream's pods that a manifest file already
	// defines, and why.
	Refused []string `json:"refused,omitempty"`
}

// PodRef names a pod.
type PodRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// journal is the upstream's last set as kept on disk.
type journal struct {
	Pods []*v1.Pod `json:"pods"`
}

func readJournal(path string) ([]*v1.Pod, error) {
	if path == "" {
		return nil, os.ErrNotExist
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var j journal
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return j.Pods, nil
}

// writeJournal replaces the journal atomically; it may hold secrets, so
// only root reads it.
func writeJournal(path string, pods []*v1.Pod) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(journal{Pods: pods})
	if err != nil {
		return err
	}
	return renameio.WriteFile(path, data, 0o600)
}
