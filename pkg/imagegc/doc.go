// Package imagegc removes unused images when the image filesystem fills
// up, as kubelet's image garbage collection does, talking to the runtime
// only through the CRI (ListImages, ImageFsInfo, RemoveImage and
// ListContainers), so it works the same against berth's own runtime and
// against containerd or CRI-O.
//
// # A pass
//
// Collect runs one pass, deciding first and acting after:
//
//  1. Observe: list every image and every container (in any state), and
//     refresh the collector's in-memory records: when each image was
//     first seen and when a pass last saw a container using it.
//  2. Measure: ImageFsInfo names the image filesystem's mount point; a
//     filesystem-stats function (statfs by default) gives its capacity
//     and available bytes. Usage is (capacity - available) / capacity.
//  3. Decide (plan, a pure function): below HighThresholdPercent nothing
//     is removed. At or above it, the images that may go are ordered
//     least recently used first (an image never used counts as used when
//     it was first seen; ties go to the larger image) and taken until
//     their sizes add up to what brings usage down to
//     LowThresholdPercent. An image is never chosen while a container of
//     any state refers to it (by image ID, tag or digest, through the
//     container's image_ref, image_id or image spec), while the runtime
//     reports it pinned, or before MinAge has passed since it was first
//     seen.
//  4. Act: remove the chosen images one by one with RemoveImage, logging
//     each (image, tags, size, reason). A failed removal is logged and the
//     pass goes on; the pass returns an error when it could not free what
//     was needed, as kubelet's does.
//
// Run records the images at once, so that MinAge counts from the start,
// and then runs a pass every Period, the first one Period after the start
// (each period counted from the end of the previous pass, so passes never
// overlap). Collect may also be called directly, for example by an
// eviction manager; passes are serialised.
//
// # Differences from kubelet, on purpose
//
//   - Records live in memory only. kubelet backdates the images it finds at
//     start-up so they are at once old enough to go; here an image's age
//     counts from when this collector first saw it, so after a restart
//     nothing is removed until MinAge has passed — never an image that was
//     pulled just before the restart for a pod about to start.
//   - An image never used is ordered by when it was first seen, among the
//     used ones by when they were last used (kubelet puts every never-used
//     image first).
//   - There is no separate sandbox-image protection: the runtime's pinned
//     flag is honoured (containerd pins its sandbox image; berth's pause
//     is built in and is no image at all).
//
// # Wiring
//
// cmd/berthd builds a Config (DefaultConfig, then file and flags), logs
// the warnings of Validate, calls New with the CRI clients it already has
// for the agent, and runs Run in a goroutine it owns, with the daemon's
// context.
package imagegc
