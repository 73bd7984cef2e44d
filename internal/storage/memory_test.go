package storage_test

import (
	"testing"

	"github.com/shoal-p2p/shoal/internal/metainfo"
	"github.com/shoal-p2p/shoal/internal/storage"
	"github.com/shoal-p2p/shoal/internal/storage/storagetest"
)

func TestMemoryConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, info *metainfo.Info) storagetest.Backend {
		return storagetest.Backend{Open: func() (storage.Storage, error) {
			return storage.NewMemory(info.TotalLength()), nil
		}}
	})
}

func TestFilesConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, info *metainfo.Info) storagetest.Backend {
		root := t.TempDir()
		return storagetest.Backend{Persistent: true, Open: func() (storage.Storage, error) {
			return storage.OpenFiles(root, info)
		}}
	})
}
