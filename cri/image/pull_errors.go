package image

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-project/berth/cri/errdefs"
)

// remoteError classifies an error talking to a registry. step says what
// was being done ("fetch manifest 3.10", "fetch layer sha256:…"). This is
// the one place that interprets go-containerregistry's and net/http's
// errors; it looks at their types, never at their text.
func remoteError(step string, err error) error {
	var (
		terr       *transport.Error
		plain      *plainHTTPError
		verifyErr  *tls.CertificateVerificationError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		dnsErr     *net.DNSError
		opErr      *net.OpError
		netErr     net.Error
	)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", step, err)
	case errors.As(err, &terr):
		return statusError(step, terr)
	case errors.As(err, &verifyErr), errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalidErr):
		return errdefs.FailedPrecondition("%s: the registry's TLS certificate is not trusted "+
			"(add its CA to caFiles in the registry configuration, or set skipVerify): %v", step, err)
	case errors.As(err, &dnsErr), errors.As(err, &opErr):
		// Before plain: when go-containerregistry tries HTTPS and HTTP
		// at once, an unreachable host fails both, and the refused HTTP
		// attempt says nothing about it.
		return errdefs.Unavailable("%s: registry unreachable: %v", step, err)
	case errors.As(err, &plain):
		return errdefs.FailedPrecondition("%s: %v (set insecure: true for it in the registry configuration "+
			"to allow plain HTTP)", step, err)
	case errors.As(err, &netErr) && netErr.Timeout():
		return errdefs.Unavailable("%s: timed out: %v", step, err)
	default:
		return errdefs.Unavailable("%s: %v", step, err)
	}
}

// statusError classifies an HTTP error status from a registry.
func statusError(step string, terr *transport.Error) error {
	switch code := terr.StatusCode; {
	case code == http.StatusUnauthorized:
		return errdefs.PermissionDenied("%s: unauthorized: missing or wrong credentials: %v", step, terr)
	case code == http.StatusForbidden:
		return errdefs.PermissionDenied("%s: access denied: %v", step, terr)
	case code == http.StatusNotFound:
		return errdefs.NotFound("%s: not found: %v", step, terr)
	case code == http.StatusTooManyRequests, code == http.StatusRequestTimeout, code >= 500:
		return errdefs.Unavailable("%s: %v", step, terr)
	default:
		return errdefs.FailedPrecondition("%s: %v", step, terr)
	}
}
