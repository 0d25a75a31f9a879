package streaming

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// dialTimeout bounds connecting to the pod's port.
const dialTimeout = 10 * time.Second

// PortForward connects stream to port on the loopback interface of the
// network namespace at netnsPath ("" is the host's, for host-network
// pods), copies both ways and returns when the pod's side is done. The end
// of the client's data is passed on as a half-close, so a request sent
// before it still gets its whole answer.
func PortForward(ctx context.Context, netnsPath string, port int32, stream io.ReadWriteCloser) error {
	if port <= 0 || port > 65535 {
		return fmt.Errorf("port %d is not a TCP port", port)
	}
	conn, err := dialLoopback(ctx, netnsPath, port)
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() {
		_, err := io.Copy(conn, stream)
		if err != nil {
			conn.Close() // the client is gone: so is the session
			return
		}
		conn.CloseWrite()
	}()
	if _, err := io.Copy(stream, conn); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("port %d: %w", port, err)
	}
	return nil
}

// dialLoopback connects to port on 127.0.0.1, else on ::1, inside the
// network namespace at netnsPath. The socket is made inside the namespace
// (on a locked thread, through ns.Do) and stays there; it can then be used
// from any thread.
func dialLoopback(ctx context.Context, netnsPath string, port int32) (*net.TCPConn, error) {
	var conn *net.TCPConn
	dial := func(ns.NetNS) error {
		d := net.Dialer{Timeout: dialTimeout}
		var errs []error
		for _, host := range []string{"127.0.0.1", "::1"} {
			c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
			if err == nil {
				conn = c.(*net.TCPConn)
				return nil
			}
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	var err error
	if netnsPath == "" {
		err = dial(nil)
	} else {
		err = ns.WithNetNSPath(netnsPath, dial)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to port %d in the pod: %w", port, err)
	}
	return conn, nil
}
