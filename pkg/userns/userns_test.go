package userns

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestAllocate(t *testing.T) {
	a := New(4)
	for _, tc := range []struct {
		op   string
		pod  types.UID
		id   uint32
		want uint32
		err  string
	}{
		{op: "allocate", pod: "a", want: 65536},
		{op: "allocate", pod: "a", want: 65536}, // the same pod keeps its block
		{op: "assign", pod: "c", id: 3 * 65536}, // found on a sandbox after a restart
		{op: "allocate", pod: "b", want: 2 * 65536},
		{op: "assign", pod: "b", id: 4 * 65536, err: "holds host IDs from 131072 already"},
		{op: "allocate", pod: "d", want: 4 * 65536},
		{op: "allocate", pod: "e", err: "all 4 are in use"},
		{op: "release", pod: "a"},
		{op: "allocate", pod: "e", want: 65536}, // a's block is free again
		{op: "assign", pod: "f", id: 2 * 65536, err: "held by pod b"},
		{op: "assign", pod: "f", id: 0, err: "not the start"},     // the host's own IDs
		{op: "assign", pod: "f", id: 70000, err: "not the start"}, // not aligned
		{op: "assign", pod: "f", id: 5 * 65536, err: "not the start"},
		{op: "assign", pod: "b", id: 2 * 65536}, // again, the same: fine
		{op: "release", pod: "nobody"},
	} {
		var got uint32
		var err error
		switch tc.op {
		case "allocate":
			got, err = a.Allocate(tc.pod)
		case "assign":
			err = a.Assign(tc.pod, tc.id)
		case "release":
			a.Release(tc.pod)
		}
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s %s %d: error %v, want one saying %q", tc.op, tc.pod, tc.id, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s %s %d: %v", tc.op, tc.pod, tc.id, err)
		case tc.op == "allocate" && tc.err == "" && got != tc.want:
			t.Errorf("allocate %s = %d, want %d", tc.pod, got, tc.want)
		}
	}
}

func TestNewBounds(t *testing.T) {
	if got := New(0).blocks; got != 1 {
		t.Errorf("New(0) has %d blocks, want 1", got)
	}
	// The last block must end at or below 2^32-1, which is no ID.
	a := New(1 << 20)
	last := uint64(a.blocks)*Size + Size - 1
	if last >= 1<<32-1 {
		t.Errorf("the last block ends at %d, beyond the last ID", last)
	}
}
