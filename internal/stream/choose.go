package stream

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/shoal-p2p/shoal/internal/metainfo"
)

// ChooseFile picks the file to stream:
//
//   - spec "": the largest audio/video file (by extension), else the
//     largest file;
//   - spec a number N: file N, counting from 0 in the torrent's file order
//     (the order `shoal info` lists);
//   - otherwise a name: the file whose path (components joined with "/")
//     equals spec, else the one file whose path ends with or contains spec
//     (case-insensitive). Several matches are an error naming them.
//
// Padding files are never chosen.
func ChooseFile(info *metainfo.Info, spec string) (int, error) {
	if info == nil || len(info.Files) == 0 {
		return 0, fmt.Errorf("stream: torrent has no files")
	}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		best, bestMedia := -1, -1
		for i, f := range info.Files {
			if f.Padding {
				continue
			}
			if best < 0 || f.Length > info.Files[best].Length {
				best = i
			}
			if IsMedia(filePath(f)) && (bestMedia < 0 || f.Length > info.Files[bestMedia].Length) {
				bestMedia = i
			}
		}
		if bestMedia >= 0 {
			return bestMedia, nil
		}
		if best < 0 {
			return 0, fmt.Errorf("stream: torrent has only padding files")
		}
		return best, nil
	}
	if n, err := strconv.Atoi(spec); err == nil {
		if n < 0 || n >= len(info.Files) || info.Files[n].Padding {
			return 0, fmt.Errorf("stream: no file %d (the torrent has %d, counted from 0)", n, len(info.Files))
		}
		return n, nil
	}
	for i, f := range info.Files {
		if !f.Padding && filePath(f) == spec {
			return i, nil
		}
	}
	lower := strings.ToLower(spec)
	var suffix, contains []int
	for i, f := range info.Files {
		if f.Padding {
			continue
		}
		p := strings.ToLower(filePath(f))
		if strings.HasSuffix(p, lower) {
			suffix = append(suffix, i)
		} else if strings.Contains(p, lower) {
			contains = append(contains, i)
		}
	}
	for _, m := range [][]int{suffix, contains} {
		switch {
		case len(m) == 1:
			return m[0], nil
		case len(m) > 1:
			names := make([]string, 0, min(len(m), 5))
			for _, i := range m[:min(len(m), 5)] {
				names = append(names, strconv.Quote(filePath(info.Files[i])))
			}
			return 0, fmt.Errorf("stream: %q matches %d files (%s...); give more of the name or the index", spec, len(m), strings.Join(names, ", "))
		}
	}
	return 0, fmt.Errorf("stream: no file matches %q", spec)
}

func filePath(f metainfo.File) string { return strings.Join(f.Path, "/") }
