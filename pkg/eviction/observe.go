package eviction

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/pkg/diskusage"
)

// measure reads every signal: memory from meminfo, nodefs from the
// filesystem of the node's root, imagefs from the one ImageFsInfo names.
func (m *Manager) measureSignals(ctx context.Context) (map[Signal]reading, error) {
	out := map[Signal]reading{}
	mem, err := memoryReading(m.cfg.MemInfo, m.cfg.CgroupFS)
	if err != nil {
		return nil, err
	}
	out[MemoryAvailable] = mem
	bytes, inodes, err := fsReadings(m.cfg.Root)
	if err != nil {
		return nil, err
	}
	out[NodeFsAvailable], out[NodeFsInodesFree] = bytes, inodes
	resp, err := m.cfg.ImageFS.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		return nil, fmt.Errorf("eviction: image filesystem info: %w", err)
	}
	if fss := resp.GetImageFilesystems(); len(fss) > 0 && fss[0].GetFsId().GetMountpoint() != "" {
		bytes, inodes, err := fsReadings(fss[0].GetFsId().GetMountpoint())
		if err != nil {
			return nil, err
		}
		out[ImageFsAvailable], out[ImageFsInodesFree] = bytes, inodes
	}
	return out, nil
}

// memoryReading is the node's memory as kubelet counts it: its capacity
// less the working set of the root cgroup, as cAdvisor measures it — what
// is in use less the file cache the kernel may drop first (inactive_file).
// On cgroup v2 the root cgroup has no memory.current, so what is in use is
// its memory.stat's anon + file, as runc's cgroup library emulates it; on
// v1 it is the root memory cgroup's usage_in_bytes. Without either, the
// estimate is MemFree + Inactive(file).
func memoryReading(meminfo, cgroupFS string) (reading, error) {
	info, err := keyedValues(meminfo, 1024) // kB
	if err != nil {
		return reading{}, fmt.Errorf("eviction: %w", err)
	}
	total, ok := info["MemTotal"]
	if !ok {
		return reading{}, fmt.Errorf("eviction: %s has no MemTotal", meminfo)
	}
	available := info["MemFree"] + info["Inactive(file)"]
	if st, err := keyedValues(filepath.Join(cgroupFS, "memory.stat"), 1); err == nil {
		available = total - max(st["anon"]+st["file"]-st["inactive_file"], 0)
	} else if st, err := keyedValues(filepath.Join(cgroupFS, "memory", "memory.stat"), 1); err == nil {
		if usage, err := readInt(filepath.Join(cgroupFS, "memory", "memory.usage_in_bytes")); err == nil {
			available = total - max(usage-st["total_inactive_file"], 0)
		}
	}
	return reading{available: available, capacity: total}, nil
}

// readInt reads a file holding one number.
func readInt(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64)
}

// keyedValues reads a file of "key value" lines (meminfo's keys end in
// ':'), each value times unit.
func keyedValues(path string, unit int64) (map[string]int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseInt(string(f[1]), 10, 64)
		if err != nil {
			continue
		}
		out[string(bytes.TrimSuffix(f[0], []byte(":")))] = n * unit
	}
	return out, sc.Err()
}

// fsReadings are the bytes and inodes left on the filesystem at dir, as
// df counts them (blocks reserved for root are not available).
func fsReadings(dir string) (bytes, inodes reading, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return reading{}, reading{}, fmt.Errorf("eviction: statfs %s: %w", dir, err)
	}
	bs := int64(st.Frsize)
	if bs == 0 {
		bs = int64(st.Bsize)
	}
	return reading{available: int64(st.Bavail) * bs, capacity: int64(st.Blocks) * bs},
		reading{available: int64(st.Ffree), capacity: int64(st.Files)}, nil
}

// podUsages measures what each running pod uses: memory and writable
// layers from the runtime's stats, and the pod's logs and disk-backed
// emptyDirs from the disk.
func (m *Manager) podUsages(ctx context.Context, pods []v1.Pod) ([]podUsage, error) {
	resp, err := m.cfg.Stats.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{})
	if err != nil {
		return nil, fmt.Errorf("eviction: pod stats: %w", err)
	}
	byUID := map[string][]*runtimeapi.PodSandboxStats{}
	for _, s := range resp.GetStats() {
		uid := s.GetAttributes().GetMetadata().GetUid()
		byUID[uid] = append(byUID[uid], s)
	}
	out := make([]podUsage, 0, len(pods))
	for i := range pods {
		p := &pods[i]
		if !active(p) {
			continue
		}
		u := podUsage{pod: p, containersMemory: map[string]int64{}}
		for _, s := range byUID[string(p.UID)] {
			u.memory += int64(s.GetLinux().GetMemory().GetWorkingSetBytes().GetValue())
			for _, c := range s.GetLinux().GetContainers() {
				name := c.GetAttributes().GetMetadata().GetName()
				u.containersMemory[name] += int64(c.GetMemory().GetWorkingSetBytes().GetValue())
				u.disk += int64(c.GetWritableLayer().GetUsedBytes().GetValue())
				u.inodes += int64(c.GetWritableLayer().GetInodesUsed().GetValue())
			}
		}
		for _, dir := range []string{
			filepath.Join(m.cfg.LogDir, fmt.Sprintf("%s_%s_%s", p.Namespace, p.Name, p.UID)),
			filepath.Join(m.cfg.PodDir, string(p.UID), "volumes", "empty-dir"),
		} {
			du, err := diskusage.Measure(dir)
			if err != nil {
				m.log.Debug("eviction: disk usage", "dir", dir, "err", err)
			}
			u.disk += int64(du.Bytes)
			u.inodes += int64(du.Inodes)
		}
		out = append(out, u)
	}
	return out, nil
}
