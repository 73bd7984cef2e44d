package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

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
