package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/berth-project/berth/cri/errdefs"
)

// Store indexes the sandbox and container records and reserves names.
// It owns the directories sandboxes/ and containers/ under root.
type Store struct {
	root string

	mu         sync.Mutex
	sandboxes  map[string]*Sandbox
	containers map[string]*Container
	names      map[string]string // name key → id, for sandboxes and containers
}

// New returns an empty store rooted at root, creating its directories.
func New(root string) (*Store, error) {
	// 0711: the root of a pod in its own user namespace is an unprivileged
	// host user that runc must let reach the rootfs and files below.
	for _, d := range []string{"sandboxes", "containers"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o711); err != nil {
			return nil, err
		}
		if err := os.Chmod(filepath.Join(root, d), 0o711); err != nil {
			return nil, err
		}
	}
	return &Store{
		root:       root,
		sandboxes:  map[string]*Sandbox{},
		containers: map[string]*Container{},
		names:      map[string]string{},
	}, nil
}

// SandboxDir and ContainerDir are where the records of id live.
func (s *Store) SandboxDir(id string) string   { return filepath.Join(s.root, "sandboxes", id) }
func (s *Store) ContainerDir(id string) string { return filepath.Join(s.root, "containers", id) }

// ReserveName claims a name key for id; AlreadyExists if another id holds it.
func (s *Store) ReserveName(key, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if other, ok := s.names[key]; ok && other != id {
		return errdefs.AlreadyExists("name %q is already in use by %s", key, other)
	}
	s.names[key] = id
	return nil
}

// ReleaseName frees a name key if id holds it.
func (s *Store) ReleaseName(key, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.names[key] == id {
		delete(s.names, key)
	}
}

// AddSandbox and AddContainer make a committed record visible.
func (s *Store) AddSandbox(sb *Sandbox) {
	s.mu.Lock()
	s.sandboxes[sb.Meta.ID] = sb
	s.mu.Unlock()
}

func (s *Store) AddContainer(c *Container) {
	s.mu.Lock()
	s.containers[c.Meta.ID] = c
	s.mu.Unlock()
}

// DeleteSandbox and DeleteContainer forget a record (its files are the
// caller's to remove).
func (s *Store) DeleteSandbox(id string) {
	s.mu.Lock()
	delete(s.sandboxes, id)
	s.mu.Unlock()
}

func (s *Store) DeleteContainer(id string) {
	s.mu.Lock()
	delete(s.containers, id)
	s.mu.Unlock()
}

// Sandbox finds a sandbox by full ID or unique ID prefix.
func (s *Store) Sandbox(id string) (*Sandbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	full, err := resolve(id, s.sandboxes, "sandbox")
	if err != nil {
		return nil, err
	}
	return s.sandboxes[full], nil
}

// Container finds a container by full ID or unique ID prefix.
func (s *Store) Container(id string) (*Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	full, err := resolve(id, s.containers, "container")
	if err != nil {
		return nil, err
	}
	return s.containers[full], nil
}

func resolve[T any](id string, m map[string]T, kind string) (string, error) {
	if id == "" {
		return "", errdefs.InvalidArgument("%s ID is empty", kind)
	}
	if _, ok := m[id]; ok {
		return id, nil
	}
	var found string
	for full := range m {
		if strings.HasPrefix(full, id) {
			if found != "" {
				return "", errdefs.InvalidArgument("%s ID prefix %q is ambiguous", kind, id)
			}
			found = full
		}
	}
	if found == "" {
		return "", errdefs.NotFound("%s %q not found", kind, id)
	}
	return found, nil
}

// Sandboxes returns all sandboxes, oldest first.
func (s *Store) Sandboxes() []*Sandbox {
	s.mu.Lock()
	out := make([]*Sandbox, 0, len(s.sandboxes))
	for _, sb := range s.sandboxes {
		out = append(out, sb)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Meta.CreatedAt < out[j].Meta.CreatedAt })
	return out
}

// Containers returns all containers, oldest first.
func (s *Store) Containers() []*Container {
	s.mu.Lock()
	out := make([]*Container, 0, len(s.containers))
	for _, c := range s.containers {
		out = append(out, c)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Meta.CreatedAt < out[j].Meta.CreatedAt })
	return out
}

// SandboxContainers returns the containers of one sandbox.
func (s *Store) SandboxContainers(sandboxID string) []*Container {
	var out []*Container
	for _, c := range s.Containers() {
		if c.Meta.SandboxID == sandboxID {
			out = append(out, c)
		}
	}
	return out
}

// Incomplete lists record directories whose creation never finished.
type Incomplete struct {
	Kind string // "sandbox" or "container"
	ID   string
	Dir  string
	Meta any // *SandboxMeta or *ContainerMeta when readable, else nil
}

// Load reads every record from disk into the store. Records whose status
// file is missing are returned as incomplete, for the caller to clean up;
// unreadable records are returned as errors and skipped, never deleted.
func (s *Store) Load() (incomplete []Incomplete, errs []error) {
	sbDirs, _ := os.ReadDir(filepath.Join(s.root, "sandboxes"))
	for _, e := range sbDirs {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dir := s.SandboxDir(e.Name())
		var meta SandboxMeta
		var st SandboxStatus
		complete, err := readRecord(dir, &meta, &st)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("sandbox %s: %w", e.Name(), err))
		case !complete:
			inc := Incomplete{Kind: "sandbox", ID: e.Name(), Dir: dir}
			if meta.ID != "" {
				inc.Meta = &meta
			}
			incomplete = append(incomplete, inc)
		default:
			sb := &Sandbox{Meta: meta, Dir: dir, status: st}
			s.sandboxes[meta.ID] = sb
			s.names[SandboxNameKey(meta.Config.Msg.GetMetadata())] = meta.ID
		}
	}
	ctrDirs, _ := os.ReadDir(filepath.Join(s.root, "containers"))
	for _, e := range ctrDirs {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dir := s.ContainerDir(e.Name())
		var meta ContainerMeta
		var st ContainerStatus
		complete, err := readRecord(dir, &meta, &st)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("container %s: %w", e.Name(), err))
		case !complete:
			inc := Incomplete{Kind: "container", ID: e.Name(), Dir: dir}
			if meta.ID != "" {
				inc.Meta = &meta
			}
			incomplete = append(incomplete, inc)
		default:
			c := &Container{Meta: meta, Dir: dir, status: st}
			s.containers[meta.ID] = c
			s.names[ContainerNameKey(meta.SandboxID, meta.Config.Msg.GetMetadata())] = meta.ID
		}
	}
	return incomplete, errs
}
