package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"

	"github.com/berth-project/berth/cri/errdefs"
)

// confExtensions are the config file kinds looked at, as libcni users
// (kubelet, containerd) do: a .conflist is a network list, the others a
// single plugin config.
var confExtensions = []string{".conflist", ".conf", ".json"}

// loadedConf caches the parsed pod network, keyed by a fingerprint of the
// config files so that a changed directory is re-read.
type loadedConf struct {
	fingerprint string
	file        string
	list        *libcni.NetworkConfigList
	err         error
}

// Ready returns nil when the pod network is usable: a config loads and
// every plugin it (and loopback) needs is in BinDirs. Otherwise the error,
// of class FailedPrecondition, says why.
func (m *Manager) Ready() error {
	_, err := m.network()
	return err
}

// network returns the current pod network, re-reading ConfDir if it
// changed, and checks its plugins are installed.
func (m *Manager) network() (*libcni.NetworkConfigList, error) {
	list, file, err := m.load()
	if err != nil {
		return nil, err
	}
	for _, p := range append(slices.Clone(list.Plugins), m.loopback.Plugins...) {
		if _, err := invoke.FindInPath(p.Network.Type, m.cfg.BinDirs); err != nil {
			return nil, errdefs.FailedPrecondition("CNI plugin %q of network %q (%s) not found in %s",
				p.Network.Type, list.Name, file, strings.Join(m.cfg.BinDirs, ":"))
		}
	}
	return list, nil
}

func (m *Manager) load() (*libcni.NetworkConfigList, string, error) {
	files, fingerprint, err := confFiles(m.cfg.ConfDir)
	if err != nil {
		return nil, "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loaded.fingerprint == fingerprint && (m.loaded.list != nil || m.loaded.err != nil) {
		return m.loaded.list, m.loaded.file, m.loaded.err
	}
	m.loaded = loadedConf{fingerprint: fingerprint}
	if len(files) == 0 {
		m.loaded.err = errdefs.FailedPrecondition("no CNI network config found in %s", m.cfg.ConfDir)
		return nil, "", m.loaded.err
	}
	var problems []string
	for _, f := range files {
		list, err := loadFile(f)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		m.loaded.file, m.loaded.list = f, list
		return list, f, nil
	}
	m.loaded.err = errdefs.FailedPrecondition("no valid CNI network config in %s: %s",
		m.cfg.ConfDir, strings.Join(problems, "; "))
	return nil, "", m.loaded.err
}

// confFiles lists the candidate config files of dir in lexical order and a
// fingerprint (names, sizes, mtimes) that changes whenever one of them
// does. A missing dir has no files.
func confFiles(dir string) (files []string, fingerprint string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", errdefs.FailedPrecondition("read CNI config directory: %w", err)
	}
	var fp strings.Builder
	for _, e := range entries { // sorted by name
		if !slices.Contains(confExtensions, filepath.Ext(e.Name())) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		fi, err := os.Stat(path) // follows symlinks, unlike e.Info
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		files = append(files, path)
		fmt.Fprintf(&fp, "%s\x00%d\x00%d\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	return files, fp.String(), nil
}

// loadFile parses one config file into a network list.
func loadFile(path string) (*libcni.NetworkConfigList, error) {
	if filepath.Ext(path) == ".conflist" {
		list, err := libcni.NetworkConfFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return list, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	conf, err := libcni.NetworkPluginConfFromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Wrap the single plugin in a list, as libcni's deprecated
	// ConfListFromConf does, keeping the plugin's own JSON intact.
	wrapped, err := json.Marshal(map[string]any{
		"cniVersion": conf.Network.CNIVersion,
		"name":       conf.Network.Name,
		"plugins":    []json.RawMessage{conf.Bytes},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	list, err := libcni.NetworkConfFromBytes(wrapped)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return list, nil
}
