// Command shoal is a peer-to-peer file-sharing system: BitTorrent client,
// tracker, DHT node and more, in one binary. This package only parses flags
// and wires the internal packages together; no protocol logic lives here.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// commands holds the constructors of every subcommand; each subcommand's file
// registers itself in an init function, so adding a command touches one file.
var commands []func() *cobra.Command

func register(c func() *cobra.Command) { commands = append(commands, c) }

// exitError carries a specific exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "shoal",
		Short: "shoal shares files peer to peer (BitTorrent-compatible)",
		Long: `shoal is a peer-to-peer file-sharing system, wire-compatible with BitTorrent
clients (Transmission, libtorrent, aria2). One binary creates torrents, downloads
and seeds them, and runs the infrastructure around them.`,
		Example: `  shoal create -t http://127.0.0.1:6969/announce -o movie.torrent movie.mkv
  shoal seed -d . movie.torrent
  shoal get -o downloads movie.torrent`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var cpuProfile string
	root.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a Go CPU profile of this command to `FILE` (read it with go tool pprof)")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if cpuProfile == "" {
			return nil
		}
		return startCPUProfile(cpuProfile)
	}
	for _, c := range commands {
		root.AddCommand(c())
	}
	return root
}

// The CPU profile --cpuprofile is writing, if any. It is stopped when the
// command returns, error or not (a cobra finalizer), so a daemon stopped
// with Ctrl-C or SIGTERM still leaves a complete profile.
var cpuProfileFile *os.File

func init() { cobra.OnFinalize(stopCPUProfile) }

func startCPUProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	cpuProfileFile = f
	return nil
}

func stopCPUProfile() {
	if cpuProfileFile == nil {
		return
	}
	pprof.StopCPUProfile()
	cpuProfileFile.Close()
	cpuProfileFile = nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRootCmd().ExecuteContext(ctx)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "shoal:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(1)
}
