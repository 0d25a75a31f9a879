// Package stats measures what containers and pods use: CPU, memory and
// process counts from their cgroups (v1 and v2, read through
// github.com/opencontainers/cgroups), network counters from a pod's
// network namespace, and the space a container's writable layer takes
// on its file system. The CRI stats and metrics verbs in cri/server are
// built on it.
//
// A cgroup is read at two depths. A Sample is what the CRI stats
// messages carry. A Detail adds what only cAdvisor-style metrics report
// (CFS throttling, memory fail counts, peak and kernel memory, OOM kills,
// the task limit, block I/O per device); it is read apart, so the stats
// verbs do not pay for it. Processes counts a cgroup's processes and the
// files and sockets they hold open, from /proc/<pid>/fd.
//
// Everything here is cheap enough for a kubelet polling 100 pods every
// 10 s: a cgroup read opens about a dozen small kernel files (some
// 0.1 ms per container, see BenchmarkContainerStats), a Detail and a
// process count about as many again (BenchmarkContainerMetrics), no
// subprocess is started, no namespace is entered, the open files of a
// cgroup are looked at only up to a cap (see Processes), and the one
// expensive measurement, the writable layer's disk usage, is a directory
// walk that is cached per container (see Layers).
//
// What is derived, and how:
//
//   - Working set is memory usage less inactive file pages (v1
//     total_inactive_file, v2 inactive_file), never below zero: the
//     memory the kernel could not reclaim cheaply, which is what kubelet
//     evicts on.
//   - usage_nano_cores is a rate, so it needs two samples: Rates keeps the
//     previous CPU reading of every container and pod in memory. The first
//     reading of an object reports no rate (the CRI field stays unset, and
//     kubelet then computes the rate from its own cache); a later reading
//     at least MinRateWindow after the kept one reports the average over
//     that window and becomes the kept one. Readings closer together than
//     that repeat the last rate, so that a burst of calls does not turn
//     timer jitter into noise.
//   - A memory limit exists when the cgroup's own limit is below the
//     "unlimited" value of its version; available bytes are then the limit
//     less the working set.
//   - A sum of cgroups (Sample.Add, Detail.Add, Processes.Add) is what one
//     cgroup holding them all would report, as far as that can be known:
//     usage and counters add up; limits, peaks, fail counts and CFS
//     periods belong to one cgroup and are dropped; a part unknown in one
//     operand (swap, kernel memory, open files) is unknown in the sum.
//   - Block devices are named as cAdvisor names them, "/dev/<name>", from
//     /sys/dev/block, remembered for a minute.
//
// Nothing in this package knows about the CRI or the store: it takes
// cgroup directories, process IDs and paths.
package stats
