package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyng/receivables/seal"
)

const testRing = "k1:dGVzdCBrZXkgb2YgdGhlIHB5bmcgdGVzdHMsIDMyIGI="

func TestKeyringComesFromTheOperatorOrTheSandbox(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "ring")
	if err := os.WriteFile(keyFile, []byte(testRing+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withSandboxKey := filepath.Join(dir, "old", "pyng.db")
	if err := os.MkdirAll(filepath.Dir(withSandboxKey), 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := seal.CreateFile(withSandboxKey+KeyFileSuffix, "sandbox-old"); err != nil {
		t.Fatal(err)
	}
	const pg = "postgres://db/pyng"
	cases := []struct {
		rule        string
		cfg         Config
		wantCurrent string // the ring's current key id, or a prefix of it
		wantCreated bool
		wantErr     []string
	}{
		{"the environment's ring is used", Config{EncryptionKey: testRing, DatabaseURL: pg}, "k1", false, nil},
		{"the key file's ring is used", Config{EncryptionKeyFile: keyFile, DatabaseURL: pg}, "k1", false, nil},
		{"a missing key file is an error naming it", Config{EncryptionKeyFile: filepath.Join(dir, "nope"), DatabaseURL: pg}, "", false,
			[]string{"PYNG_ENCRYPTION_KEY_FILE", "nope"}},
		{"the sandbox on SQLite makes its key beside the database", Config{Sandbox: true, DatabaseURL: "sqlite:" + filepath.Join(dir, "new", "pyng.db")},
			"sandbox-", true, nil},
		{"the sandbox reads the key it made", Config{Sandbox: true, DatabaseURL: withSandboxKey}, "sandbox-old", false, nil},
		{"outside the sandbox no key is refused", Config{DatabaseURL: pg}, "", false, []string{"no encryption key", "PYNG_ENCRYPTION_KEY", "pyng admin keys generate"}},
		{"outside the sandbox the sandbox's key file is not used but named", Config{DatabaseURL: withSandboxKey}, "", false,
			[]string{"no encryption key", "PYNG_ENCRYPTION_KEY_FILE=" + withSandboxKey + KeyFileSuffix}},
		{"outside the sandbox on SQLite no key is refused", Config{DatabaseURL: "sqlite:" + filepath.Join(dir, "other", "pyng.db")}, "", false,
			[]string{"no encryption key"}},
		{"a sandbox on PostgreSQL without a key is refused", Config{Sandbox: true, DatabaseURL: pg}, "", false, []string{"no encryption key", "PostgreSQL"}},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			keys, created, err := Keyring(tc.cfg)
			if tc.wantErr != nil {
				for _, want := range tc.wantErr {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Fatalf("Keyring error = %v, want one saying %q", err, want)
					}
				}
				if _, err := os.Stat(filepath.Join(dir, "other")); err == nil {
					t.Fatal("a refused start made a key file")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(keys.Current(), tc.wantCurrent) {
				t.Fatalf("current key %q, want %q…", keys.Current(), tc.wantCurrent)
			}
			if (created != "") != tc.wantCreated {
				t.Fatalf("created %q, want a file created: %v", created, tc.wantCreated)
			}
			if !tc.wantCreated {
				return
			}
			path, _ := strings.CutPrefix(tc.cfg.DatabaseURL, "sqlite:")
			if created != path+KeyFileSuffix {
				t.Fatalf("created %s, want %s", created, path+KeyFileSuffix)
			}
			info, err := os.Stat(created)
			if err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v, %v; want mode 0600", info, err)
			}
			again, createdAgain, err := Keyring(tc.cfg)
			if err != nil || createdAgain != "" || again.Current() != keys.Current() {
				t.Fatalf("the next start: key %q, created %q, %v; want the same key, read", again.Current(), createdAgain, err)
			}
		})
	}
}
