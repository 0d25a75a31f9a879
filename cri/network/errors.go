package network

import (
	"context"
	"errors"

	cnitypes "github.com/containernetworking/cni/pkg/types"

	"github.com/berth-project/berth/cri/errdefs"
)

// classify wraps a plugin error (the last of args, wrapped with %w in
// format) in an errdefs class: a deadline is DeadlineExceeded, a config
// the plugin rejects is FailedPrecondition (retrying will not help until
// the config changes), anything else is Unavailable.
func classify(ctx context.Context, err error, format string, args ...any) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return errdefs.DeadlineExceeded(format, args...)
	}
	var cniErr *cnitypes.Error
	if errors.As(err, &cniErr) {
		switch cniErr.Code {
		case cnitypes.ErrIncompatibleCNIVersion, cnitypes.ErrUnsupportedField,
			cnitypes.ErrInvalidEnvironmentVariables, cnitypes.ErrDecodingFailure,
			cnitypes.ErrInvalidNetworkConfig:
			return errdefs.FailedPrecondition(format, args...)
		}
	}
	return errdefs.Unavailable(format, args...)
}
