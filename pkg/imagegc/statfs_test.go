package imagegc

import (
	"strings"
	"testing"
)

func TestStatfs(t *testing.T) {
	capacity, available, err := Statfs(t.TempDir())
	if err != nil || capacity == 0 || available > capacity {
		t.Errorf("Statfs = %d, %d, %v; want a capacity and no more available", capacity, available, err)
	}
	if _, _, err := Statfs("/nonexistent/imagegc"); err == nil || !strings.Contains(err.Error(), "/nonexistent/imagegc") {
		t.Errorf("Statfs of a missing path = %v, want an error naming it", err)
	}
}
