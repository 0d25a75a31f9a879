package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// refuseSwap fails while swap is on, as kubelet's failSwapOn: memory
// limits and the eviction thresholds assume pods are never swapped out.
func refuseSwap(procSwaps string) error {
	data, err := os.ReadFile(procSwaps)
	if err != nil {
		return fmt.Errorf("failSwapOn: %w", err)
	}
	if devs := swapDevices(data); len(devs) > 0 {
		return fmt.Errorf("swap is on (%s): berth, as kubelet, does not run pods with swap; turn it off (swapoff -a) or start with --fail-swap-on=false (failSwapOn: false)",
			strings.Join(devs, ", "))
	}
	return nil
}

// swapDevices are the active swap areas of a /proc/swaps.
func swapDevices(procSwaps []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(procSwaps))
	for first := true; sc.Scan(); first = false {
		if f := strings.Fields(sc.Text()); !first && len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}
