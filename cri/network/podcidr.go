package network

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	cniplugins "github.com/berth-project/berth/cni-plugins"
	"github.com/berth-project/berth/cri/atomicfile"
	"github.com/berth-project/berth/cri/errdefs"
)

// UpdatePodCIDR makes berth's default network use the pod subnet cidr
// (comma-separated for dual stack: one IPv4 and one IPv6 subnet). A bad
// CIDR is InvalidArgument; an empty one changes nothing. The config is
// written as 10-berth.conflist, atomically, only when ConfDir holds no
// config or only that file; a config written by someone else is left
// alone (and nil returned). Pods already attached keep their addresses.
func (m *Manager) UpdatePodCIDR(cidr string) error {
	if strings.TrimSpace(cidr) == "" {
		return nil
	}
	subnets, err := parsePodCIDR(cidr)
	if err != nil {
		return err
	}
	data, err := cniplugins.Conflist(cniplugins.Options{
		Name:    m.cfg.DefaultNetworkName,
		Bridge:  m.cfg.DefaultBridge,
		Subnets: subnets,
		DataDir: m.cfg.DefaultIPAMDataDir,
	})
	if err != nil {
		return errdefs.InvalidArgument("pod CIDR %q: %w", cidr, err)
	}

	m.mu.Lock() // no two writers race on the check and the write
	defer m.mu.Unlock()
	files, _, err := confFiles(m.cfg.ConfDir)
	if err != nil {
		return err
	}
	for _, f := range files {
		if filepath.Base(f) != cniplugins.ConflistName {
			return nil // the node's network is someone else's
		}
	}
	path := filepath.Join(m.cfg.ConfDir, cniplugins.ConflistName)
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("update pod CIDR: %w", err)
	}
	if err := os.MkdirAll(m.cfg.ConfDir, 0o755); err != nil {
		return fmt.Errorf("update pod CIDR: %w", err)
	}
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("update pod CIDR: %w", err)
	}
	return nil
}

// splitTrim splits a comma-separated list, dropping blanks.
func splitTrim(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
