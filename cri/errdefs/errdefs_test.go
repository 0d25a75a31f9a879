package errdefs

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestClassSurvivesWrapping(t *testing.T) {
	err := fmt.Errorf("remove container: %w", NotFound("container %q", "abc"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("errors.Is(%v, ErrNotFound) = false", err)
	}
	if errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("%v matched the wrong class", err)
	}
	if got, want := err.Error(), `remove container: container "abc"`; got != want {
		t.Fatalf("message = %q, want %q", got, want)
	}
}

func TestCauseStaysReachable(t *testing.T) {
	err := InvalidArgument("read %s: %w", "x", fs.ErrNotExist)
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("%v lost its cause or class", err)
	}
}
