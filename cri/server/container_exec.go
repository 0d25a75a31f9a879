package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/runc"
	"github.com/berth-project/berth/cri/store"
)

// maxExecOutput caps what ExecSync buffers per stream; more is dropped.
const maxExecOutput = 16 << 20

// ExecSync runs a command in a running container with the container's
// user, environment and security settings, and returns its output and
// exit code. A timeout kills the command and answers DeadlineExceeded.
func (s *Service) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if len(req.GetCmd()) == 0 {
		return nil, errdefs.InvalidArgument("cmd is required")
	}
	c, err := s.store.Container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if st := s.containerStatus(ctx, c); st.State != store.ContainerRunning {
		return nil, errdefs.FailedPrecondition("container %s is %s, not running", c.Meta.ID, st.State)
	}
	proc, err := execProcess(c, req.GetCmd())
	if err != nil {
		return nil, err
	}
	scratch, err := s.execScratch()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	stdout := &cappedBuffer{max: maxExecOutput}
	stderr := &cappedBuffer{max: maxExecOutput}
	code, err := s.cfg.Runc.Exec(ctx, c.Meta.ID, proc, scratch, runc.ExecIO{Stdout: stdout, Stderr: stderr},
		time.Duration(req.GetTimeout())*time.Second)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(code)}, nil
}

// execProcess is the process spec for running cmd in container c: the
// container's own user, environment, capabilities and security settings,
// without a terminal.
func execProcess(c *store.Container, cmd []string) (*specs.Process, error) {
	var spec specs.Spec
	data, err := os.ReadFile(filepath.Join(c.Dir, "config.json"))
	if err == nil {
		err = json.Unmarshal(data, &spec)
	}
	if err != nil || spec.Process == nil {
		return nil, fmt.Errorf("exec in container %s: read its spec: %v", c.Meta.ID, err)
	}
	proc := *spec.Process
	proc.Args = cmd
	proc.Terminal = false
	proc.ConsoleSize = nil
	return &proc, nil
}

// execScratch makes a private directory for one exec's process spec, pid
// file and runc log; the caller removes it.
func (s *Service) execScratch() (string, error) {
	return os.MkdirTemp(filepath.Join(s.cfg.State, "sandboxes"), "exec-")
}

// cappedBuffer keeps the first max bytes written and drops the rest, so a
// chatty command cannot exhaust berthd's memory.
type cappedBuffer struct {
	bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		if len(p) > room {
			b.Buffer.Write(p[:room])
		} else {
			b.Buffer.Write(p)
		}
	}
	return len(p), nil
}
