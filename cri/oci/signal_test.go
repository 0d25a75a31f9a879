package oci

import (
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCRISignal(t *testing.T) {
	for _, tt := range []struct {
		in   syscall.Signal
		want runtimeapi.Signal
	}{
		{0, runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT},
		{syscall.SIGTERM, runtimeapi.Signal_SIGNAL_SIGTERM},
		{syscall.SIGUSR1, runtimeapi.Signal_SIGNAL_SIGUSR1},
		{syscall.SIGKILL, runtimeapi.Signal_SIGNAL_SIGKILL},
		{syscall.SIGQUIT, runtimeapi.Signal_SIGNAL_SIGQUIT},
		{34, runtimeapi.Signal_SIGNAL_SIGRTMIN},
		{37, runtimeapi.Signal_SIGNAL_SIGRTMINPLUS3},
		{49, runtimeapi.Signal_SIGNAL_SIGRTMINPLUS15},
		{50, runtimeapi.Signal_SIGNAL_SIGRTMAXMINUS14},
		{63, runtimeapi.Signal_SIGNAL_SIGRTMAXMINUS1},
		{64, runtimeapi.Signal_SIGNAL_SIGRTMAX},
		{99, runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT},
	} {
		if got := CRISignal(tt.in); got != tt.want {
			t.Errorf("CRISignal(%d) = %v, want %v", tt.in, got, tt.want)
		}
	}
	// Every signal StopSignal accepts has a CRI name.
	for _, name := range []string{"SIGHUP", "SIGINT", "SIGWINCH", "SIGPWR", "SIGSYS", "SIGRTMIN+7", "SIGRTMAX-3"} {
		sig, err := StopSignal(v1.Config{StopSignal: name})
		if err != nil || CRISignal(sig) == runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
			t.Errorf("StopSignal(%s) = %d, %v: no CRI name", name, sig, err)
		}
	}
}

func TestFromCRISignalRoundTrip(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGKILL, syscall.SIGQUIT, 34, 37, 64} {
		got, ok := FromCRISignal(CRISignal(sig))
		if !ok || got != sig {
			t.Errorf("FromCRISignal(CRISignal(%d)) = %d, %v", sig, got, ok)
		}
	}
	if _, ok := FromCRISignal(runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT); ok {
		t.Error("RUNTIME_DEFAULT named a signal")
	}
}
