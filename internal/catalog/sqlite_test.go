package catalog_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/shoal-p2p/shoal/internal/catalog"
	"github.com/shoal-p2p/shoal/internal/catalog/catalogtest"
)

func TestSQLiteConformance(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) catalog.Store {
		s, err := catalog.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "cat.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestSQLiteMemoryConformance(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) catalog.Store {
		s, err := catalog.OpenSQLite(context.Background(), ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestSQLiteReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cat.db")
	s, err := catalog.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, catalog.Entry{InfoHash: catalogtest.Hash("a"), Name: "persistent thing"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = catalog.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hs, total, err := s.Search(ctx, catalog.Query{Text: "sistent"})
	if err != nil || total != 1 || hs[0].Name != "persistent thing" {
		t.Fatalf("after reopen: %v %d %v", hs, total, err)
	}
}
