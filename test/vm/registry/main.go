// Command registry serves an OCI registry in memory, for the VM lane's
// critest run: the guest has no network, so the images critest pulls are
// handed in as docker archives and served from the guest's loopback.
//
//	registry ADDRESS REPOSITORY:TAG=ARCHIVE...
//
// Each archive's image is pushed under ADDRESS/REPOSITORY:TAG before the
// registry is reported ready (a line "ready" on stdout); it then serves
// until killed.
package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "registry:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 1 {
		return errors.New("usage: registry ADDRESS [REPOSITORY:TAG=ARCHIVE]")
	}
	l, err := net.Listen("tcp", args[0])
	if err != nil {
		return err
	}
	go http.Serve(l, registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	for _, a := range args[1:] {
		ref, archive, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("%q is not REPOSITORY:TAG=ARCHIVE", a)
		}
		tag, err := name.NewTag(l.Addr().String()+"/"+ref, name.Insecure)
		if err != nil {
			return err
		}
		img, err := tarball.ImageFromPath(archive, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", archive, err)
		}
		if err := remote.Write(tag, img); err != nil {
			return fmt.Errorf("push %s: %w", tag, err)
		}
	}
	fmt.Println("ready")
	select {}
}
