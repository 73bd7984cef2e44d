package server

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// startRedis starts a throwaway redis-server on 127.0.0.1 and returns its
// URL; it is stopped (by PID) when the test ends. Without redis-server the
// test is skipped, unless SHOAL_REQUIRE_INTEROP=1.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("SHOAL_REQUIRE_INTEROP") == "1" {
			t.Fatal("redis-server not installed and SHOAL_REQUIRE_INTEROP=1")
		}
		t.Skip("redis-server not installed")
	}
	for attempt := 0; attempt < 5; attempt++ {
		// Pick a free port, then hand it to redis (a small race, hence retries).
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--save", "", "--appendonly", "no",
			"--bind", "127.0.0.1", "--dir", t.TempDir())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		})
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-exited:
				deadline = time.Time{}
				continue
			default:
			}
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				c.Close()
				return fmt.Sprintf("redis://127.0.0.1:%d/0", port)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Fatal("redis-server did not start")
	return ""
}

var redisPrefixSeq atomic.Int64

func newTestRedisStore(t *testing.T, url string) *RedisStore {
	t.Helper()
	s, err := NewRedisStore(context.Background(), url, fmt.Sprintf("test%d:", redisPrefixSeq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRedisStoreConformance(t *testing.T) {
	url := startRedis(t)
	runStoreConformance(t, func(t *testing.T) Store { return newTestRedisStore(t, url) })
}

func TestRedisBadURL(t *testing.T) {
	if _, err := NewRedisStore(context.Background(), "memcached://x", ""); err == nil {
		t.Fatal("bad URL accepted")
	}
}

// TestRedisTwoInstances: a peer that announced to one tracker instance is
// returned by another sharing the Redis, over HTTP and UDP, and UDP
// connection ids issued by one are accepted by the other.
func TestRedisTwoInstances(t *testing.T) {
	url := startRedis(t)
	prefix := fmt.Sprintf("two%d:", redisPrefixSeq.Add(1))
	var udp [2]*UDPServer
	var httpH [2]*HTTPHandler
	for i := range 2 {
		st, err := NewRedisStore(context.Background(), url, prefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		tr, err := New(st, Config{})
		if err != nil {
			t.Fatal(err)
		}
		secret, err := st.SharedSecret(context.Background())
		if err != nil || len(secret) != 32 {
			t.Fatalf("shared secret %x: %v", secret, err)
		}
		if udp[i], err = NewUDPServer(tr, secret); err != nil {
			t.Fatal(err)
		}
		httpH[i] = NewHTTPHandler(tr)
	}
	r := httpAnnounce(t, httpH[0], "127.0.0.1:1", announceQuery(ihA, 6881, "event=started"))
	if r.Failure != "" {
		t.Fatal(r.Failure)
	}
	r = httpAnnounce(t, httpH[1], "127.0.0.2:1", announceQuery(ihA, 6882, "event=started"))
	if string(r.Peers) != "6:\x7f\x00\x00\x01\x1a\xe1" || r.Incomplete != 2 {
		t.Fatalf("instance 2 over HTTP: %+v", r)
	}
	from := netip.MustParseAddrPort("127.0.0.3:5000")
	id := udpConnect(t, udp[0], from)
	resp := udp[1].Handle(context.Background(), announcePkt(id, 1, ihA, 0, EventStarted, 10, 6883), from, nil)
	if len(resp) != 20+12 || binary.BigEndian.Uint32(resp[12:]) != 2 || binary.BigEndian.Uint32(resp[16:]) != 1 {
		t.Fatalf("instance 2 over UDP with instance 1's connection id: %x", resp)
	}
}
