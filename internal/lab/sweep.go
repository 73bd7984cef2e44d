package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// PlotTitle is the title of the sweep figure.
const PlotTitle = "Client-Server vs. P2P"

// SweepConfig describes a sweep: for each N, each client kind, Reps runs.
type SweepConfig struct {
	Base    Config   // everything but N and Clients
	Ns      []int    // peer counts
	Clients []string // kinds, in run order
	Reps    int      // runs per point; 0 = 1
	Out     string   // folder for results.csv, distribution.png, distribution.svg
}

// Sweep runs the measurements one after the other (never in parallel: they
// share the CPU), rewrites Out/results.csv after every run so partial
// results survive, and finally draws the figure. A failed run is reported
// and skipped; the returned error joins all failures.
func Sweep(ctx context.Context, sc SweepConfig) ([]Result, error) {
	if len(sc.Ns) == 0 || len(sc.Clients) == 0 {
		return nil, errors.New("sweep: need at least one N and one client kind")
	}
	if sc.Reps <= 0 {
		sc.Reps = 1
	}
	if err := os.MkdirAll(sc.Out, 0o755); err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	logw := sc.Base.Log
	var rs []Result
	var errs []error
	for _, n := range sc.Ns {
		for _, c := range sc.Clients {
			for rep := range sc.Reps {
				if ctx.Err() != nil {
					return rs, errors.Join(append(errs, ctx.Err())...)
				}
				cfg := sc.Base
				cfg.N, cfg.Clients, cfg.LogDir = n, c, ""
				if cfg.Seeder != "" && c == ClientsHTTP {
					cfg.Seeder = ""
				}
				res, err := Run(ctx, cfg)
				if err != nil {
					errs = append(errs, fmt.Errorf("n=%d %s run %d: %w", n, c, rep+1, err))
					if logw != nil {
						fmt.Fprintf(logw, "sweep: n=%d %s: %v\n", n, c, err)
					}
					continue
				}
				if logw != nil {
					fmt.Fprintln(logw, res.Summary())
					fmt.Fprintf(logw, "%s clients=%s\n", res.Line(), c)
				}
				rs = append(rs, *res)
				if err := writeCSVFile(filepath.Join(sc.Out, "results.csv"), rs); err != nil {
					return rs, err
				}
			}
		}
	}
	if len(rs) > 0 {
		if err := Plot(rs, PlotTitle, filepath.Join(sc.Out, "distribution.png"), filepath.Join(sc.Out, "distribution.svg")); err != nil {
			errs = append(errs, err)
		}
	}
	return rs, errors.Join(errs...)
}

func writeCSVFile(path string, rs []Result) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	if err := WriteCSV(f, rs); err != nil {
		f.Close()
		return fmt.Errorf("sweep: %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sweep: %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
