package runc

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-project/berth/cri/errdefs"
)

func TestClassify(t *testing.T) {
	exitErr := &exec.ExitError{}
	tests := []struct {
		stderr string
		class  error
		msg    string
	}{
		{`{"level":"error","msg":"container \"x\" does not exist","time":"t"}`, errdefs.ErrNotFound, `container "x" does not exist`},
		{`{"level":"error","msg":"cannot start a container that has stopped"}`, errdefs.ErrFailedPrecondition, "has stopped"},
		{`{"level":"warning","msg":"noise"}` + "\n" + `{"level":"error","msg":"container is not running"}`, errdefs.ErrFailedPrecondition, "not running"},
		{"plain text failure\n", nil, "plain text failure"},
	}
	for _, tt := range tests {
		err := Classify("start", []byte(tt.stderr), exitErr)
		if tt.class != nil && !errors.Is(err, tt.class) {
			t.Errorf("%q: %v is not %v", tt.stderr, err, tt.class)
		}
		if !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "runc start: ") {
			t.Errorf("%q: message %q", tt.stderr, err)
		}
	}
}

func TestChildEnvDropsNotifySocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	for _, kv := range childEnv() {
		if strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			t.Fatal("NOTIFY_SOCKET passed to runc")
		}
	}
}
