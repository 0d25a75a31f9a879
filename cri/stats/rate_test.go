package stats

import (
	"testing"
	"time"
)

func TestRatesNanoCores(t *testing.T) {
	type reading struct {
		after  time.Duration // since t0
		usage  uint64
		want   uint64
		wantOK bool
	}
	tests := []struct {
		name     string
		readings []reading
	}{
		{"first reading has no rate", []reading{{0, 5e9, 0, false}}},
		{"half a core over two seconds", []reading{
			{0, 5e9, 0, false},
			{2 * time.Second, 6e9, 5e8, true},
		}},
		{"idle", []reading{
			{0, 5e9, 0, false},
			{10 * time.Second, 5e9, 0, true},
		}},
		{"too soon repeats the last rate and keeps the older reading", []reading{
			{0, 0, 0, false},
			{100 * time.Millisecond, 1e9, 0, false},
			{time.Second, 1e9, 1e9, true},
			{1500 * time.Millisecond, 1e9, 1e9, true},
			// measured from the reading at 1 s, not the one at 1.5 s
			{3 * time.Second, 3e9, 1e9, true},
		}},
		{"counter going backwards starts over", []reading{
			{0, 5e9, 0, false},
			{2 * time.Second, 3e9, 0, false},
			{4 * time.Second, 5e9, 1e9, true},
		}},
		{"clock going backwards starts over", []reading{
			{10 * time.Second, 5e9, 0, false},
			{5 * time.Second, 6e9, 0, false},
			{7 * time.Second, 8e9, 1e9, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRates()
			for i, rd := range tt.readings {
				got, ok := r.NanoCores("c", t0.Add(rd.after), rd.usage)
				if got != rd.want || ok != rd.wantOK {
					t.Errorf("reading %d: got (%d, %v), want (%d, %v)", i, got, ok, rd.want, rd.wantOK)
				}
			}
		})
	}
}

func TestRatesKeysAreSeparate(t *testing.T) {
	r := NewRates()
	r.NanoCores("a", t0, 0)
	if _, ok := r.NanoCores("b", t0.Add(2*time.Second), 1e9); ok {
		t.Error("b has a rate from a's reading")
	}
	if got, ok := r.NanoCores("a", t0.Add(2*time.Second), 1e9); !ok || got != 5e8 {
		t.Errorf("a: got (%d, %v), want (5e8, true)", got, ok)
	}
	r.Forget("a")
	if _, ok := r.NanoCores("a", t0.Add(4*time.Second), 2e9); ok {
		t.Error("a has a rate after Forget")
	}
}

// Readings nobody renews are dropped, so removed containers do not pile up.
func TestRatesForgetStaleKeys(t *testing.T) {
	r := NewRates()
	r.NanoCores("gone", t0, 1)
	r.NanoCores("alive", t0.Add(forgetAfter+2*time.Minute), 1)
	r.mu.Lock()
	_, stale := r.kept["gone"]
	r.mu.Unlock()
	if stale {
		t.Error("stale reading kept")
	}
}
