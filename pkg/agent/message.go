package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Termination messages, as kubelet: a file of the pod's directory bound at
// the container's terminationMessagePath, read once it has exited (at most
// 4 KiB); with FallbackToLogsOnError, the end of its log when the file is
// empty and it failed.
const (
	maxMessage      = 4096
	maxLogMessage   = 2048
	logMessageLines = 80
)

func (m *Manager) messagePath(uid types.UID, name string, attempt uint32) string {
	return filepath.Join(m.cfg.PodDir, string(uid), "containers", name, strconv.FormatUint(uint64(attempt), 10))
}

// terminationMessageMount creates the attempt's message file and binds it
// at the container's terminationMessagePath.
func (w *worker) terminationMessageMount(pod *v1.Pod, c *v1.Container, attempt uint32) (*runtimeapi.Mount, error) {
	if c.TerminationMessagePath == "" || w.m.cfg.PodDir == "" {
		return nil, nil
	}
	path := w.m.messagePath(pod.UID, c.Name, attempt)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("termination message: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|unix.O_NOFOLLOW, 0o666)
	if err != nil {
		return nil, fmt.Errorf("termination message: %w", err)
	}
	if err := f.Chmod(0o666); err != nil { // whatever user the container runs as writes it
		f.Close()
		return nil, fmt.Errorf("termination message: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("termination message: %w", err)
	}
	return &runtimeapi.Mount{ContainerPath: c.TerminationMessagePath, HostPath: path}, nil
}

// terminationMessage is what an exited container left for its status.
func (w *worker) terminationMessage(c *containerObs, policy string) string {
	if w.m.cfg.PodDir == "" {
		return ""
	}
	msg, _ := readAtMost(w.m.messagePath(c.uid, c.name, c.attempt), maxMessage)
	if len(msg) > 0 || policy != string(v1.TerminationMessageFallbackToLogsOnError) || c.exitCode == 0 || w.m.cfg.LogDir == "" {
		return string(msg)
	}
	log := filepath.Join(podLogDirOf(w.m.cfg.LogDir, w.namespace, w.name, c.uid), containerLogPath(c.name, c.attempt))
	return logTail(log)
}

func readAtMost(path string, n int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// logTail is the last lines of a CRI log file's messages, at most
// maxLogMessage bytes of them.
func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	// The lines wanted are within the last few KiB, even with the CRI
	// prefixes (about 40 bytes a line).
	const window = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > window {
		if _, err := f.Seek(st.Size()-window, io.SeekStart); err != nil {
			return ""
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, window))
	if err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > logMessageLines {
		lines = lines[len(lines)-logMessageLines:]
	}
	var out []byte
	for _, l := range lines {
		// <time> <stream> <P|F> <message>
		fields := bytes.SplitN(l, []byte(" "), 4)
		if len(fields) != 4 {
			continue
		}
		out = append(out, fields[3]...)
		if string(fields[2]) == "F" {
			out = append(out, '\n')
		}
	}
	if len(out) > maxLogMessage {
		out = out[len(out)-maxLogMessage:]
	}
	return string(out)
}
