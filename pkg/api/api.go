// Package api serves the agent's read-only local HTTP API: /healthz
// (?verbose for the detail), /pods (a v1.PodList, as kubelet's read-only
// port has it), /events (the pods' recent events, a v1.EventList),
// /manifests (each manifest file: the pods it produced, or why it was
// refused) and /upstream (the control plane plugin's connection and pods).
package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-project/berth/pkg/manifest"
	"github.com/berth-project/berth/pkg/source"
)

// Manifest is one file as /manifests reports it.
type Manifest struct {
	File  string   `json:"file"`
	Pods  []PodRef `json:"pods,omitempty"`
	Error string   `json:"error,omitempty"`
	// RolledBack says, per pod, why a health-gated update of it was
	// undone: the pod runs its last version that was Ready instead.
	RolledBack []string `json:"rolledBack,omitempty"`
}

// PodRef names a pod a manifest produced.
type PodRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// podLister is where the pods and their status come from.
type podLister interface {
	Pods() []v1.Pod
}

// eventLister is where the pods' recent events come from.
type eventLister interface {
	Events() []v1.Event
}

// sources is where pods come from: the manifest directory's last reading
// and the upstream plugin's state.
type sources interface {
	Manifests() []manifest.File
	Upstream() source.UpstreamStatus
}

// Server answers the API.
type Server struct {
	pods    podLister
	events  eventLister
	sources sources

	mounts map[string]http.Handler
}

// Mount serves h at pattern (such as "GET /metrics/probes") too; call it
// before Handler.
func (s *Server) Mount(pattern string, h http.Handler) {
	if s.mounts == nil {
		s.mounts = map[string]http.Handler{}
	}
	s.mounts[pattern] = h
}

// New returns a server listing pods, their events and their sources.
func New(pods podLister, events eventLister, src sources) *Server {
	return &Server{pods: pods, events: events, sources: src}
}

// manifests is the latest reading of the manifest directory.
func (s *Server) manifests() []Manifest {
	files := s.sources.Manifests()
	out := make([]Manifest, 0, len(files))
	for _, f := range files {
		m := Manifest{File: f.Path}
		if f.Err != nil {
			m.Error = f.Err.Error()
		}
		for _, p := range f.Pods {
			m.Pods = append(m.Pods, PodRef{Namespace: p.Namespace, Name: p.Name, UID: string(p.UID)})
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out
}

// Handler routes the endpoints; anything but GET is refused.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for pattern, h := range s.mounts {
		mux.Handle(pattern, h)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if !r.URL.Query().Has("verbose") {
			w.Write([]byte("ok"))
			return
		}
		// An unreachable upstream is detail, not ill health: the node
		// keeps running its pods without it.
		fmt.Fprintln(w, "[+]agent ok")
		if up := s.sources.Upstream(); up.Plugin != "" {
			line := "upstream " + up.Plugin + " " + up.Connection
			if up.Error != "" {
				line += ": " + up.Error
			}
			fmt.Fprintf(w, "[%s]%s\n", map[bool]string{true: "+", false: "-"}[up.Connection == "connected"], line)
		}
		fmt.Fprintln(w, "healthz check passed")
	})
	mux.HandleFunc("GET /upstream", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.sources.Upstream())
	})
	mux.HandleFunc("GET /pods", func(w http.ResponseWriter, _ *http.Request) {
		list := v1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: s.pods.Pods()}
		if list.Items == nil {
			list.Items = []v1.Pod{}
		}
		for i := range list.Items {
			list.Items[i].TypeMeta = metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}
		}
		writeJSON(w, list)
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, _ *http.Request) {
		list := v1.EventList{TypeMeta: metav1.TypeMeta{Kind: "EventList", APIVersion: "v1"}, Items: s.events.Events()}
		if list.Items == nil {
			list.Items = []v1.Event{}
		}
		writeJSON(w, list)
	})
	mux.HandleFunc("GET /manifests", func(w http.ResponseWriter, _ *http.Request) {
		ms := s.manifests()
		rolledBack := map[string]string{}
		for _, p := range s.pods.Pods() {
			for _, c := range p.Status.Conditions {
				if c.Type == conditionRolledBack && c.Status == v1.ConditionTrue {
					rolledBack[p.Namespace+"/"+p.Name] = c.Message
				}
			}
		}
		for i := range ms {
			for _, p := range ms[i].Pods {
				if msg, ok := rolledBack[p.Namespace+"/"+p.Name]; ok {
					ms[i].RolledBack = append(ms[i].RolledBack, p.Namespace+"/"+p.Name+": "+msg)
				}
			}
		}
		writeJSON(w, ms)
	})
	return mux
}

// conditionRolledBack is the agent's pod condition for an undone update.
const conditionRolledBack = "berth.io/RolledBack"

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
