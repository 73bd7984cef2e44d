package catalog_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/catalog/catalogtest"
)

// findPGBin returns the directory holding initdb and postgres.
func findPGBin() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p)
		}
	}
	ms, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(ms) > 0 {
		return filepath.Dir(ms[len(ms)-1])
	}
	return ""
}

// startPostgres runs a throw-away PostgreSQL on 127.0.0.1 and returns a DSN
// base (without database name). It skips when PostgreSQL is not installed,
// unless SHOAL_REQUIRE_INTEROP=1.
func startPostgres(t *testing.T) string {
	t.Helper()
	bin := findPGBin()
	if bin == "" {
		if os.Getenv("SHOAL_REQUIRE_INTEROP") == "1" {
			t.Fatal("PostgreSQL (initdb, postgres) not found; install the Debian package postgresql")
		}
		t.Skip("PostgreSQL not installed (Debian package postgresql)")
	}
	base, err := os.MkdirTemp("", "shoal-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	data := filepath.Join(base, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 { // postgres refuses to run as root
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("running as root and no user nobody: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chmod(base, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(data, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	cmd := func(name string, arg ...string) *exec.Cmd {
		c := exec.Command(filepath.Join(bin, name), arg...)
		c.Dir = base
		c.Env = append(os.Environ(), "LC_ALL=C")
		if cred != nil {
			c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		return c
	}
	if out, err := cmd("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := cmd("postgres", "-D", data, "-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "synchronous_commit=off")
	logf, err := os.Create(filepath.Join(base, "log"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGINT) // fast shutdown
		done := make(chan struct{})
		go func() { srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			srv.Process.Kill()
			<-done
		}
		logf.Close()
	})
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := sql.Open("pgx", dsn+"postgres?sslmode=disable")
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		if err == nil {
			return dsn
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(filepath.Join(base, "log"))
			t.Fatalf("postgres did not come up: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPostgresConformance(t *testing.T) {
	dsn := startPostgres(t)
	admin, err := sql.Open("pgx", dsn+"postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var n atomic.Int32
	catalogtest.Run(t, func(t *testing.T) catalog.Store {
		name := fmt.Sprintf("cat_%d", n.Add(1))
		if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatal(err)
		}
		s, err := catalog.OpenPostgres(context.Background(), dsn+name+"?sslmode=disable")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
