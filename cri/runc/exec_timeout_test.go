package runc

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestAfterStartCountsFromThePidFile(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	stop := make(chan struct{})
	defer close(stop)
	fire := afterStart(pidFile, stop, time.Millisecond)
	// The timer starts once runc has written the pid file.
	if err := os.WriteFile(pidFile, []byte("42"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fire:
	case <-time.After(30 * time.Second):
		t.Fatal("never fired once the process had started")
	}
}
