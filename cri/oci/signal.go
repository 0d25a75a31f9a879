package oci

import (
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-project/berth/cri/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Real-time signal bounds as user space sees them: glibc keeps 32 and 33
// for itself, so SIGRTMIN is 34, as docker and containerd count it.
const (
	sigRTMin = 34
	sigRTMax = 64
)

// signalAliases are names unix.SignalNum does not know.
var signalAliases = map[string]syscall.Signal{
	"SIGIOT":    unix.SIGABRT,
	"SIGCLD":    unix.SIGCHLD,
	"SIGPOLL":   unix.SIGIO,
	"SIGUNUSED": unix.SIGSYS,
}

// StopSignal returns the signal that asks the image's process to stop: its
// STOPSIGNAL ("SIGTERM", "TERM", "term", "15", "SIGRTMIN+3", "RTMAX-1"), or
// SIGTERM when it has none. An unknown signal is an InvalidArgument.
func StopSignal(imageCfg v1.Config) (syscall.Signal, error) {
	s := strings.TrimSpace(imageCfg.StopSignal)
	if s == "" {
		return unix.SIGTERM, nil
	}
	sig, ok := parseSignal(s)
	if !ok {
		return 0, errdefs.InvalidArgument("image StopSignal: unknown signal %q", imageCfg.StopSignal)
	}
	return sig, nil
}

func parseSignal(s string) (syscall.Signal, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return syscall.Signal(n), n > 0 && n <= sigRTMax
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig, ok := signalAliases[name]; ok {
		return sig, true
	}
	if sig, ok := parseRealtime(name); ok {
		return sig, true
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, true
	}
	return 0, false
}

// parseRealtime reads SIGRTMIN, SIGRTMIN+n, SIGRTMAX and SIGRTMAX-n.
func parseRealtime(name string) (syscall.Signal, bool) {
	base, sign, rest := 0, 0, ""
	switch {
	case strings.HasPrefix(name, "SIGRTMIN"):
		base, sign, rest = sigRTMin, 1, strings.TrimPrefix(name, "SIGRTMIN")
	case strings.HasPrefix(name, "SIGRTMAX"):
		base, sign, rest = sigRTMax, -1, strings.TrimPrefix(name, "SIGRTMAX")
	default:
		return 0, false
	}
	if rest == "" {
		return syscall.Signal(base), true
	}
	op := "+"
	if sign < 0 {
		op = "-"
	}
	num, ok := strings.CutPrefix(rest, op)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 {
		return 0, false
	}
	sig := base + sign*n
	return syscall.Signal(sig), sig >= sigRTMin && sig <= sigRTMax
}

// CRISignal names sig in the CRI's Signal enum, whose numbers are not the
// kernel's (SIGTERM is 23 there). 0 and signals it lacks are RUNTIME_DEFAULT.
func CRISignal(sig syscall.Signal) runtimeapi.Signal {
	var name string
	switch {
	case sig == sigRTMin:
		name = "SIGRTMIN"
	case sig > sigRTMin && sig <= sigRTMin+15:
		name = "SIGRTMINPLUS" + strconv.Itoa(int(sig)-sigRTMin)
	case sig > sigRTMin+15 && sig < sigRTMax:
		name = "SIGRTMAXMINUS" + strconv.Itoa(sigRTMax-int(sig))
	case sig == sigRTMax:
		name = "SIGRTMAX"
	default:
		name = unix.SignalName(sig)
	}
	return runtimeapi.Signal(runtimeapi.Signal_value["SIGNAL_"+name])
}

// FromCRISignal is the kernel signal a CRI Signal names; ok is false for
// RUNTIME_DEFAULT and names this system does not know.
func FromCRISignal(s runtimeapi.Signal) (sig syscall.Signal, ok bool) {
	if s == runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		return 0, false
	}
	name, found := strings.CutPrefix(s.String(), "SIGNAL_")
	if !found {
		return 0, false
	}
	name = strings.Replace(strings.Replace(name, "PLUS", "+", 1), "MINUS", "-", 1)
	return parseSignal(name)
}
