package nat

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/relay"
	"github.com/shoal-p2p/shoal/internal/session"
)

func helperLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// helperRelay runs the relay in namespace P until SIGTERM.
func helperRelay() int {
	ctx, cancel := helperContext()
	defer cancel()
	cfg := relay.Config{Listen: relayMain, PortMin: 30000, PortMax: 30009, MaxConnsPerPeer: labConnsPerPeer, Logger: helperLog()}
	if os.Getenv("SHOAL_NAT_DIRECTORY") != "" {
		cfg.DirectoryTrackers = []string{trackerURL} // list itself in the relay directory
	}
	if r, err := strconv.ParseInt(os.Getenv("SHOAL_NAT_RELAY_RATE"), 10, 64); err == nil && r > 0 {
		cfg.PeerRate = r // a slow relay, so that where the bytes flowed shows
	}
	s, err := relay.NewServer(cfg)
	if err != nil {
		fmt.Println("relay:", err)
		return 1
	}
	fmt.Println("relay listening on", s.Addr())
	helperRendezvous(ctx)
	go func() {
		for ctx.Err() == nil {
			time.Sleep(2 * time.Second)
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Printf("relay stats %+v heap_inuse=%d goroutines=%d\n", s.Stats(), ms.HeapInuse, runtime.NumGoroutine())
		}
	}()
	if err := s.Serve(ctx); err != nil {
		fmt.Println("relay:", err)
		return 1
	}
	return 0
}

// helperSeeder runs a shoal seeder in namespace A until SIGTERM. It does not
// claim to be behind a NAT: the relay's probe has to find that out.
func helperSeeder() int {
	ctx, cancel := helperContext()
	defer cancel()
	log := helperLog()
	mi, err := metainfo.Load(os.Getenv("SHOAL_NAT_TORRENT"))
	if err != nil {
		fmt.Println("seeder:", err)
		return 1
	}
	c, err := session.NewClient(session.Config{Listen: seederIP + ":6881", Logger: log})
	if err != nil {
		fmt.Println("seeder:", err)
		return 1
	}
	t, err := c.Add(ctx, mi, session.Options{Root: os.Getenv("SHOAL_NAT_DATA")})
	if err != nil {
		fmt.Println("seeder:", err)
		return 1
	}
	go c.Run(ctx)
	if st := t.Stats(); !st.Complete {
		fmt.Printf("seeder: data incomplete: %+v\n", st)
		return 1
	}
	if os.Getenv("SHOAL_NAT_FIND_RELAYS") != "" {
		// no relay named: find one in the relay directory at the tracker
		if err := c.FindRelays(ctx, nil, 1, false, func(msg string) { fmt.Println(msg) }); err != nil {
			fmt.Println("seeder:", err)
			return 1
		}
	} else if _, err := c.UseRelays(ctx, []string{relayMain}, false); err != nil {
		fmt.Println("seeder:", err)
		return 1
	}
	<-ctx.Done()
	<-t.Stopped()
	return 0
}
