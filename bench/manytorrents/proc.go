package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// memStatus holds the /proc/PID/status memory lines we report, in KiB.
type memStatus struct {
	RSS, HWM, Anon, File, Shmem int64
}

// readMem reads VmRSS, VmHWM, RssAnon, RssFile and RssShmem of pid.
func readMem(pid int) (memStatus, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memStatus{}, fmt.Errorf("read memory of %d: %w", pid, err)
	}
	defer f.Close()
	var m memStatus
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
		return memStatus{}, fmt.Errorf("read memory of %d: %w", pid, err)
	}
	if m.RSS == 0 {
		return memStatus{}, fmt.Errorf("read memory of %d: no VmRSS line", pid)
	}
	return m, nil
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// establishedOn counts ESTABLISHED TCP sockets (IPv4 and IPv6) whose local
// port is port: the connections a listener on that port has accepted.
func establishedOn(port uint16) (int, error) {
	n := 0
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(name)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return 0, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			// sl local_address rem_address st ...; local_address is HEXIP:HEXPORT
			if len(fs) < 4 || fs[3] != "01" {
				continue
			}
			i := strings.LastIndexByte(fs[1], ':')
			if i < 0 {
				continue
			}
			if p, err := strconv.ParseUint(fs[1][i+1:], 16, 16); err == nil && uint16(p) == port {
				n++
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}
