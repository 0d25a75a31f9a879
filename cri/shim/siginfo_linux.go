package shim

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// siginfoPid reads si_pid from a siginfo filled by waitid. x/sys/unix
// exposes the union only as raw bytes; for SIGCHLD si_pid follows the
// three leading ints (signo, errno, code) and the padding to 8 bytes.
func siginfoPid(info *unix.Siginfo) int32 {
	return *(*int32)(unsafe.Pointer(uintptr(unsafe.Pointer(info)) + 16))
}
