// Package errdefs classifies the runtime's errors. Core packages wrap one of
// the sentinel errors with %w; only the CRI edge (cri/server) maps the class
// to a gRPC code, so no other package needs to know about gRPC.
package errdefs

import (
	"errors"
	"fmt"
)

// The classes. Each corresponds to one gRPC code at the CRI edge.
var (
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrUnavailable        = errors.New("unavailable")
	ErrDeadlineExceeded   = errors.New("deadline exceeded")
	ErrUnimplemented      = errors.New("not implemented")
	ErrPermissionDenied   = errors.New("permission denied")
)

// classed keeps the caller's message intact while still matching its class
// with errors.Is.
type classed struct {
	class error
	msg   string
	cause error
}

func (e *classed) Error() string { return e.msg }

func (e *classed) Is(target error) bool { return target == e.class }

func (e *classed) Unwrap() error { return e.cause }

func newf(class error, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &classed{class: class, msg: err.Error(), cause: errors.Unwrap(err)}
}

// NotFound returns an error of class ErrNotFound with the given message.
func NotFound(format string, args ...any) error { return newf(ErrNotFound, format, args...) }

// AlreadyExists returns an error of class ErrAlreadyExists.
func AlreadyExists(format string, args ...any) error {
	return newf(ErrAlreadyExists, format, args...)
}

// InvalidArgument returns an error of class ErrInvalidArgument.
func InvalidArgument(format string, args ...any) error {
	return newf(ErrInvalidArgument, format, args...)
}

// FailedPrecondition returns an error of class ErrFailedPrecondition.
func FailedPrecondition(format string, args ...any) error {
	return newf(ErrFailedPrecondition, format, args...)
}

// Unavailable returns an error of class ErrUnavailable.
func Unavailable(format string, args ...any) error { return newf(ErrUnavailable, format, args...) }

// DeadlineExceeded returns an error of class ErrDeadlineExceeded.
func DeadlineExceeded(format string, args ...any) error {
	return newf(ErrDeadlineExceeded, format, args...)
}

// Unimplemented returns an error of class ErrUnimplemented.
func Unimplemented(format string, args ...any) error {
	return newf(ErrUnimplemented, format, args...)
}

// PermissionDenied returns an error of class ErrPermissionDenied: the caller
// (or the credentials it gave) may not do what it asked, e.g. a registry
// answered 401 or 403.
func PermissionDenied(format string, args ...any) error {
	return newf(ErrPermissionDenied, format, args...)
}
