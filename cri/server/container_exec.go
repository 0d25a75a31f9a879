package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/enter"
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
	spec, proc, err := execProcess(c, req.GetCmd())
	if err != nil {
		return nil, err
	}
	stdout := &cappedBuffer{max: maxExecOutput}
	stderr := &cappedBuffer{max: maxExecOutput}
	code, err := s.exec(ctx, c, spec, proc, runc.ExecIO{Stdout: stdout, Stderr: stderr},
		time.Duration(req.GetTimeout())*time.Second)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(code)}, nil
}

// exec runs proc, without a terminal, in running container c of spec:
// through berth-exec when it can honour every setting of proc as runc
// would, else through runc. A timeout (> 0) counts from the start.
func (s *Service) exec(ctx context.Context, c *store.Container, spec *specs.Spec, proc *specs.Process, stdio runc.ExecIO, timeout time.Duration) (int, error) {
	if h := s.cfg.Exec; h != nil && enter.Unsupported(spec, proc) == nil {
		target := enter.Container{ID: c.Meta.ID, Pid: c.Status().Pid, CgroupDir: s.cfg.CgroupDriver.Dir(c.Meta.CgroupsPath), Spec: spec}
		code, err := h.Run(ctx, target, proc, enter.IO(stdio), timeout)
		if !errors.Is(err, enter.ErrSetup) {
			s.log.Debug("exec", "container", c.Meta.ID, "with", "berth-exec")
			return code, err
		}
		// The command did not run: runc can still run it.
		s.log.Warn("exec without runc failed; running it with runc", "container", c.Meta.ID, "error", err)
	}
	scratch, err := s.execScratch()
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(scratch)
	s.log.Debug("exec", "container", c.Meta.ID, "with", "runc")
	return s.cfg.Runc.Exec(ctx, c.Meta.ID, proc, scratch, stdio, timeout)
}

// execProcess is the spec of container c and the process for running cmd
// in it: the container's own user, environment, capabilities and security
// settings, without a terminal.
func execProcess(c *store.Container, cmd []string) (*specs.Spec, *specs.Process, error) {
	var spec specs.Spec
	data, err := os.ReadFile(filepath.Join(c.Dir, "config.json"))
	if err == nil {
		err = json.Unmarshal(data, &spec)
	}
	if err != nil || spec.Process == nil {
		return nil, nil, fmt.Errorf("exec in container %s: read its spec: %v", c.Meta.ID, err)
	}
	proc := *spec.Process
	proc.Args = cmd
	proc.Terminal = false
	proc.ConsoleSize = nil
	return &spec, &proc, nil
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
