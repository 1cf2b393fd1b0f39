package becs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestAnOutboxMarkerIsWrittenWithoutHardLinks writes an outbox's marker on a file system without
// hard links (CIFS, many FUSE mounts: link fails EPERM), whose outbox needs only renames: the
// marker is created all the same, and read back; an empty marker (one being written by a server
// starting at the same moment) is refused, not recorded.
func TestAnOutboxMarkerIsWrittenWithoutHardLinks(t *testing.T) {
	link = func(string, string) error { return &os.LinkError{Op: "link", Err: syscall.EPERM} }
	t.Cleanup(func() { link = os.Link })
	dir := Dir(t.TempDir())
	marker, written, err := dir.marker()
	if err != nil || !written || marker == "" {
		t.Fatalf("marker() = %q, %v, %v; want a new marker written", marker, written, err)
	}
	again, written, err := dir.marker()
	if err != nil || written || again != marker {
		t.Fatalf("marker() again = %q, %v, %v; want %q read", again, written, err, marker)
	}
	entries, err := os.ReadDir(string(dir))
	if err != nil || len(entries) != 1 || entries[0].Name() != outboxMarker {
		t.Errorf("the outbox holds %v (%v); want its marker only", entries, err)
	}

	empty := Dir(t.TempDir())
	if err := os.WriteFile(filepath.Join(string(empty), outboxMarker), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if marker, _, err := empty.marker(); err == nil {
		t.Errorf("an empty marker read as %q; want an error", marker)
	}
}
