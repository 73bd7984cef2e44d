// Package procstat reads a process's memory figures from /proc/PID/status
// (Linux), for the benchmarks and tests that report or bound RSS.
package procstat

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Mem holds the memory lines of /proc/PID/status, in KiB.
type Mem struct {
	RSS   int64 // VmRSS: resident now
	HWM   int64 // VmHWM: peak resident
	Anon  int64 // RssAnon
	File  int64 // RssFile: mapped files
	Shmem int64 // RssShmem
}

// Read returns pid's memory figures; an error if the process is gone or the
// status file has no VmRSS line (a kernel thread, or not Linux).
func Read(pid int) (Mem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Mem{}, fmt.Errorf("read memory of %d: %w", pid, err)
	}
	defer f.Close()
	var m Mem
	fields := map[string]*int64{"VmRSS:": &m.RSS, "VmHWM:": &m.HWM, "RssAnon:": &m.Anon, "RssFile:": &m.File, "RssShmem:": &m.Shmem}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 {
			if p := fields[fs[0]]; p != nil {
				*p, _ = strconv.ParseInt(fs[1], 10, 64)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return Mem{}, fmt.Errorf("read memory of %d: %w", pid, err)
	}
	if m.RSS == 0 {
		return Mem{}, fmt.Errorf("read memory of %d: no VmRSS line", pid)
	}
	return m, nil
}
