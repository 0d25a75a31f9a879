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
	mem, err := memoryReading(m.cfg.MemInfo)
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

// memoryReading is the node's memory as kubelet counts it: the working set
// is what is in use less the file cache the kernel may drop first
// (inactive_file), so available = MemFree + Inactive(file), of MemTotal.
func memoryReading(meminfo string) (reading, error) {
	data, err := os.ReadFile(meminfo)
	if err != nil {
		return reading{}, fmt.Errorf("eviction: %w", err)
	}
	fields := map[string]int64{}
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
		fields[string(bytes.TrimSuffix(f[0], []byte(":")))] = n << 10 // kB
	}
	total, ok := fields["MemTotal"]
	if !ok {
		return reading{}, fmt.Errorf("eviction: %s has no MemTotal", meminfo)
	}
	return reading{available: fields["MemFree"] + fields["Inactive(file)"], capacity: total}, nil
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
