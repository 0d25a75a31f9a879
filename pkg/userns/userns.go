// Package userns hands out the host IDs of pods that have a user namespace
// of their own (hostUsers: false), as kubelet's user namespace manager
// does: each pod gets a block of 65536 host UIDs and as many GIDs,
// starting at a multiple of 65536 and never below 65536, so that no pod
// shares IDs with the host's users or with another pod.
//
// The allocator keeps no record of its own: the agent writes each pod's
// block on its sandbox and, after a restart, reports the blocks it finds
// there with Assign before it allocates anything.
package userns

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// Size is the number of IDs in a pod's block.
const Size = 65536

// Allocator hands out blocks of host IDs by pod UID. It is safe for
// concurrent use.
type Allocator struct {
	blocks uint32 // blocks 1..blocks are handed out; block 0 is the host's

	mu    sync.Mutex
	owner map[uint32]types.UID // block → pod
	block map[types.UID]uint32 // pod → block
}

// New returns an allocator of blocks for up to pods pods (at least 1; at
// most what fits below 2^32).
func New(pods int) *Allocator {
	n := uint32(max(pods, 1))
	n = min(n, 1<<16-2) // the last block would reach 2^32-1, which is no ID
	return &Allocator{blocks: n, owner: map[uint32]types.UID{}, block: map[types.UID]uint32{}}
}

// Allocate returns the first host ID of pod's block, handing out the
// lowest free one if the pod has none yet.
func (a *Allocator) Allocate(pod types.UID) (uint32, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b, ok := a.block[pod]; ok {
		return b * Size, nil
	}
	for b := uint32(1); b <= a.blocks; b++ {
		if _, used := a.owner[b]; !used {
			a.owner[b], a.block[pod] = pod, b
			return b * Size, nil
		}
	}
	return 0, fmt.Errorf("no free block of host IDs for a user namespace: all %d are in use (one per pod, up to maxPods)", a.blocks)
}

// Assign records that pod holds the block starting at hostID, as found on
// its sandbox. It refuses an ID that is not the start of a block of this
// allocator and a block another pod holds.
func (a *Allocator) Assign(pod types.UID, hostID uint32) error {
	if hostID%Size != 0 || hostID/Size < 1 || hostID/Size > a.blocks {
		return fmt.Errorf("host ID %d is not the start of one of the %d blocks of %d IDs from %d", hostID, a.blocks, Size, Size)
	}
	b := hostID / Size
	a.mu.Lock()
	defer a.mu.Unlock()
	if other, used := a.owner[b]; used && other != pod {
		return fmt.Errorf("host IDs from %d are held by pod %s", hostID, other)
	}
	if old, ok := a.block[pod]; ok && old != b {
		return fmt.Errorf("pod %s holds host IDs from %d already", pod, old*Size)
	}
	a.owner[b], a.block[pod] = pod, b
	return nil
}

// Release frees pod's block, if it has one.
func (a *Allocator) Release(pod types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b, ok := a.block[pod]; ok {
		delete(a.owner, b)
		delete(a.block, pod)
	}
}
