package admission

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Capacity measures the node as kubelet reports it: its CPUs, its memory
// (MemTotal), its pre-allocated huge pages by size, the size of the
// filesystem holding root (ephemeral storage) and maxPods.
func Capacity(root string, maxPods int) (v1.ResourceList, error) {
	out := v1.ResourceList{
		v1.ResourceCPU:  *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		v1.ResourcePods: *resource.NewQuantity(int64(maxPods), resource.DecimalSI),
	}
	mem, err := MemTotal()
	if err != nil {
		return nil, err
	}
	out[v1.ResourceMemory] = *resource.NewQuantity(mem, resource.BinarySI)
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return nil, fmt.Errorf("ephemeral storage: statfs %s: %w", root, err)
	}
	out[v1.ResourceEphemeralStorage] = *resource.NewQuantity(int64(st.Blocks)*st.Bsize, resource.BinarySI)
	dirs, _ := filepath.Glob("/sys/kernel/mm/hugepages/hugepages-*kB")
	for _, d := range dirs {
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(d), "hugepages-"), "kB"), 10, 64)
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(d, "nr_hugepages"))
		if err != nil {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		name := v1.ResourceName(v1.ResourceHugePagesPrefix + resource.NewQuantity(kb<<10, resource.BinarySI).String())
		out[name] = *resource.NewQuantity(n*kb<<10, resource.BinarySI)
	}
	return out, nil
}

// MemTotal is the node's memory in bytes, as /proc/meminfo says it.
func MemTotal() (int64, error) { return MemInfo("MemTotal") }

// MemInfo is one of /proc/meminfo's figures (MemTotal, SwapTotal…), in bytes.
func MemInfo(key string) (int64, error) {
	const path = "/proc/meminfo"
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == key+":" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("memory: %s: %s %q: %w", path, key, fields[1], err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("memory: %s has no %s", path, key)
}
