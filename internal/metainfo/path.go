package metainfo

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// MaxComponentLen is the longest file or directory name accepted (the usual
// file-system limit, in bytes).
const MaxComponentLen = 255

// MaxPathDepth is the most components one file path may have.
const MaxPathDepth = 64

// ValidateComponent reports whether name is safe as one file or directory
// name taken from a torrent. The rules are refusals, not repairs: shoal does
// not rename files, it refuses torrents whose names could escape the output
// folder or mean different things on different systems. Refused: empty
// names, "." and "..", any '/' or '\\', NUL bytes, a Windows drive prefix
// ("C:"), invalid UTF-8, and names longer than MaxComponentLen bytes.
func ValidateComponent(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty name")
	case name == "." || name == "..":
		return fmt.Errorf("name %q is a relative directory reference", name)
	case len(name) > MaxComponentLen:
		return fmt.Errorf("name of %d bytes is longer than %d", len(name), MaxComponentLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("name %q is not valid UTF-8", name)
	case strings.ContainsRune(name, 0):
		return fmt.Errorf("name %q contains a NUL byte", name)
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("name %q contains a path separator", name)
	case len(name) >= 2 && name[1] == ':' && isASCIILetter(name[0]):
		return fmt.Errorf("name %q starts with a drive letter", name)
	}
	return nil
}

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// ValidatePath checks every component of a file path from a torrent.
func ValidatePath(path []string) error {
	if len(path) == 0 {
		return fmt.Errorf("empty path")
	}
	if len(path) > MaxPathDepth {
		return fmt.Errorf("path of %d components is deeper than %d", len(path), MaxPathDepth)
	}
	for _, c := range path {
		if err := ValidateComponent(c); err != nil {
			return fmt.Errorf("path %q: %w", strings.Join(path, "/"), err)
		}
	}
	return nil
}

// FilePath returns where file f lives under root: root/Name/path... for a
// multi-file torrent, root/Name for a single file. The components were
// validated by ParseInfo, so the result is always inside root; storage
// re-checks anyway (an Info built by hand bypasses ParseInfo).
func (i *Info) FilePath(root string, f int) string {
	if !i.MultiFile {
		return filepath.Join(root, i.Name)
	}
	parts := make([]string, 0, len(i.Files[f].Path)+2)
	parts = append(parts, root, i.Name)
	parts = append(parts, i.Files[f].Path...)
	return filepath.Join(parts...)
}
