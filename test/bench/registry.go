package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-project/berth/test/harness"
)

// withRegistry serves img as repo:tag from an in-process registry and
// starts a berthd that may pull from it over plain HTTP; f gets both.
func withRegistry(ctx context.Context, img v1.Image, repoTag string, f func(d *harness.Daemon, ref name.Reference) error) error {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, err := name.ParseReference(host+"/"+repoTag, name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.Write(ref, img); err != nil {
		return err
	}
	d, err := harness.NewDaemon()
	if err != nil {
		return err
	}
	defer d.Cleanup()
	if err := d.SetRegistryConfig(fmt.Sprintf("registries:\n  %q:\n    insecure: true\n", host)); err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	return f(d, ref)
}
