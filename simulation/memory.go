package simulation

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
)

// MemoryStats: all nodes share one process, whose heap cannot be split by
// node. PerNodeHeapApprox is (peak heap - heap before the nodes started) /
// nodes: an average that includes the harness's own share.
type MemoryStats struct {
	PeakRSSBytes      uint64 `json:"peak_rss_bytes"`
	BaselineHeapBytes uint64 `json:"baseline_heap_bytes"`
	PeakHeapBytes     uint64 `json:"peak_heap_bytes"`
	PerNodeHeapApprox uint64 `json:"per_node_heap_approx_bytes"`
	Note              string `json:"note"`
}

// heapBytes is the live heap objects' size now.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// peakRSS is the process's peak resident set (VmHWM), 0 where /proc is
// unavailable.
func peakRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// dirSize is the bytes of the files under dir (a node's Badger directory).
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
