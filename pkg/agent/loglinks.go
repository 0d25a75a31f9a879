package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Log shippers (fluent-bit, promtail, vector) read containers' logs
// through kubelet's links: <LinkDir>/<pod>_<namespace>_<container>-<id>.log
// to the log file. A link lives as long as its container; pod names and
// namespaces cannot hold "_", so the name is unambiguous.

// linkLog links a started container's log.
func (m *Manager) linkLog(pod, namespace, container, id, logFile string) {
	if m.cfg.LogLinkDir == "" || m.cfg.LogDir == "" {
		return
	}
	if err := os.MkdirAll(m.cfg.LogLinkDir, 0o755); err != nil {
		m.cfg.Log.Warn("log link", "dir", m.cfg.LogLinkDir, "err", err)
		return
	}
	link := filepath.Join(m.cfg.LogLinkDir, fmt.Sprintf("%s_%s_%s-%s.log", pod, namespace, container, id))
	tmp := link + ".tmp"
	os.Remove(tmp)
	err := os.Symlink(logFile, tmp)
	if err == nil {
		err = os.Rename(tmp, link)
	}
	if err != nil {
		os.Remove(tmp)
		m.cfg.Log.Warn("log link", "link", link, "err", err)
	}
}

// unlinkContainerLog removes a removed container's link.
func (m *Manager) unlinkContainerLog(id string) {
	m.unlinkLogs("*-"+id+".log", "")
}

// unlinkPodLogs removes the links into a pod version's log directory
// (another version of the pod, same name, keeps its own).
func (m *Manager) unlinkPodLogs(name, namespace, logDir string) {
	m.unlinkLogs(name+"_"+namespace+"_*", logDir)
}

// unlinkLogs removes the links that match pattern and, if under is not
// "", point below it.
func (m *Manager) unlinkLogs(pattern, under string) {
	if m.cfg.LogLinkDir == "" {
		return
	}
	links, _ := filepath.Glob(filepath.Join(m.cfg.LogLinkDir, pattern))
	for _, l := range links {
		if under != "" {
			if target, err := os.Readlink(l); err != nil || !strings.HasPrefix(target, under+string(filepath.Separator)) {
				continue
			}
		}
		if err := os.Remove(l); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.cfg.Log.Warn("remove log link", "link", l, "err", err)
		}
	}
}
