package becs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pyng/receivables/storage"
)

// outboxMarker is the file in an outbox directory that names it: a random id, recorded in
// becs_outboxes by the directory's path.
const outboxMarker = ".pyng-outbox"

// ErrOutboxNotShared is CheckOutbox's answer for a directory that is not the one the other
// servers on the database deliver to at its path.
var ErrOutboxNotShared = errors.New("not the outbox the other servers on this database deliver to")

// ErrUnknownFiles is CheckOutbox's answer for an outbox that holds files the database does not
// know: a database restored to a point before they were cut holds their debits queued, and cuts
// them into new files, beside the ones the bank may have had already.
var ErrUnknownFiles = errors.New("the outbox holds BECS files this database does not know")

// CheckOutbox makes sure that dir is the outbox every server on the database delivers to at its
// path, and that it holds no file the database does not know (ErrUnknownFiles). Any replica may
// deliver a file, set a lodged one's copy aside or remove one too late to lodge; with a
// directory of its own on each host, the files would be scattered over the hosts, and a file
// removed too late to lodge from one host only. The first server to use a path writes its
// marker into the directory and records it; a server whose directory at that path holds no
// marker, or another, is refused (ErrOutboxNotShared).
func (r *Rail) CheckOutbox(ctx context.Context, dir Dir) error {
	if err := r.checkShared(ctx, dir); err != nil {
		return err
	}
	unknown, err := r.unknownFiles(ctx, dir)
	if err != nil {
		return fmt.Errorf("becs outbox %s: %w", dir, err)
	}
	if len(unknown) > 0 {
		return fmt.Errorf("becs outbox %s: %w: %s. Was it restored from a backup taken before they were cut? Their debits are queued again, "+
			"and the next cut-off puts them in new files: a debit in one of these that the bank has would be collected twice. Check with the bank "+
			"which of these it has, then move them out of the outbox and its %s/ (see docs/operations.md, \"Backups\")",
			dir, ErrUnknownFiles, strings.Join(unknown, ", "), lodgedDir)
	}
	return nil
}

// unknownFiles lists the files of the outbox and its lodged/ folder, as delivery names them
// (FILE_ID.aba), whose id the database does not know.
func (r *Rail) unknownFiles(ctx context.Context, dir Dir) ([]string, error) {
	var names, ids []string
	for _, folder := range []string{"", lodgedDir} {
		entries, err := os.ReadDir(filepath.Join(string(dir), folder))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if id, ok := fileIDOfName(e.Name()); ok {
				names, ids = append(names, filepath.Join(folder, e.Name())), append(ids, id)
			}
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	arg, err := jsonArg(ids)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	if err := r.conn.Query(ctx, r.q(`SELECT f.id FROM `+r.values(1)+` JOIN becs_files f ON f.id = v.value`), []any{arg},
		func(row storage.Scanner) error {
			var id string
			err := row.Scan(&id)
			known[id] = true
			return err
		}); err != nil {
		return nil, err
	}
	var unknown []string
	for i, name := range names {
		if !known[ids[i]] {
			unknown = append(unknown, name)
		}
	}
	return unknown, nil
}

// checkShared is CheckOutbox's check of the marker.
func (r *Rail) checkShared(ctx context.Context, dir Dir) error {
	marker, written, err := dir.marker()
	if err != nil {
		return fmt.Errorf("becs outbox %s: %w", dir, err)
	}
	if _, err := r.conn.Exec(ctx, r.q(`INSERT INTO becs_outboxes (dir, marker) VALUES ($1, $2) ON CONFLICT (dir) DO NOTHING`),
		string(dir), marker); err != nil {
		return fmt.Errorf("becs outbox %s: %w", dir, err)
	}
	var recorded string
	if err := r.conn.Query(ctx, r.q(`SELECT marker FROM becs_outboxes WHERE dir = $1`), []any{string(dir)},
		func(row storage.Scanner) error { return row.Scan(&recorded) }); err != nil {
		return fmt.Errorf("becs outbox %s: %w", dir, err)
	}
	if recorded == marker {
		return nil
	}
	if written {
		// Not left behind: a start after the directory is fixed (mounted from the shared file
		// system) must not find this one's marker.
		_ = os.Remove(filepath.Join(string(dir), outboxMarker))
	}
	return fmt.Errorf("becs outbox %s: %w: its %s does not hold %s, the marker recorded for this path. Give every replica the same directory "+
		"(a file system they all mount at this path), for any replica may deliver a file there; if this directory is to replace the "+
		"one recorded, copy %s from that one into it, or, that one lost, forget it (DELETE FROM becs_outboxes WHERE dir = '%s')",
		dir, ErrOutboxNotShared, outboxMarker, recorded, outboxMarker, strings.ReplaceAll(string(dir), "'", "''"))
}

// marker returns the directory's marker, writing a new one when it has none (written): whole,
// under a temporary name, then linked to its name, so that a server starting beside this one on
// the same directory reads the whole marker, and the first written is the one both keep. On a
// file system without hard links (the outbox needs only renames otherwise) the marker is created
// exclusively instead: a server starting at the same moment may read it empty, and is refused
// rather than record an empty marker; started again, it reads the whole one.
func (d Dir) marker() (marker string, written bool, err error) {
	path := filepath.Join(string(d), outboxMarker)
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return readMarker(path)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	marker = hex.EncodeToString(id)
	content := []byte(marker + "\n")
	tmp := filepath.Join(string(d), stagedName(outboxMarker+"-"+marker))
	if err := writeSynced(tmp, content); err != nil {
		return "", false, err
	}
	err = link(tmp, path)
	_ = os.Remove(tmp)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		err = writeFileSynced(path, os.O_EXCL, content)
	}
	if errors.Is(err, fs.ErrExist) {
		return readMarker(path)
	}
	if err != nil {
		return "", false, err
	}
	return marker, true, syncDir(string(d))
}

// link is os.Link, which a test replaces to stand for a file system without hard links.
var link = os.Link

// readMarker reads an outbox's marker, refusing an empty one: one being written, or broken.
func readMarker(path string) (string, bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false, err
	}
	marker := strings.TrimSpace(string(b))
	if marker == "" {
		return "", false, fmt.Errorf("%s is empty: being written by a server starting at the same moment (start again), or broken (remove it)", path)
	}
	return marker, false, nil
}
