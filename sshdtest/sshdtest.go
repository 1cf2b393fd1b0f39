// Package sshdtest runs a real OpenSSH server (Debian's openssh-server, /usr/sbin/sshd) on a
// loopback port for a test, as the current user, with its own configuration, host key and
// client key in a temporary directory, serving SFTP: the BECS rail's SFTP delivery is tested
// against it, not against a fake.
package sshdtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Binary is the server the tests run; .ci/run installs it (openssh-server) when missing.
const Binary = "/usr/sbin/sshd"

// Server is a running sshd.
type Server struct {
	Addr string // 127.0.0.1:port
	User string
	// Dir is a directory of the test's that the server serves (an absolute path).
	Dir string
	// KeyFile is the client's private key; KnownHosts a known_hosts file pinning the server's
	// host key (Ed25519); OtherKnownHosts one naming another Ed25519 key for the same address.
	KeyFile, KnownHosts, OtherKnownHosts string
	// ExtraKnownHosts pins only the server's extra host key, when it has one (ExtraHostKey).
	ExtraKnownHosts string
}

// Option changes the server Start runs.
type Option func(*options)

type options struct{ extraHostKey, deniedRequests string }

// ExtraHostKey gives the server a second host key, of the type keyType of ssh-keygen -t ("rsa",
// "ecdsa"), besides its Ed25519 one: it offers both, as a bank's server may.
func ExtraHostKey(keyType string) Option {
	return func(o *options) { o.extraHostKey = keyType }
}

// DeniedRequests makes the server refuse the SFTP requests named (sftp-server -P, such as
// "posix-rename"), as a bank's server that is not OpenSSH lacks its extensions.
func DeniedRequests(requests ...string) Option {
	return func(o *options) { o.deniedRequests = strings.Join(requests, ",") }
}

// URL is the sftp:// URL of a directory under Dir.
func (s Server) URL(sub string) string {
	return "sftp://" + s.User + "@" + s.Addr + "/" + filepath.Join(s.Dir, sub)
}

// Start runs sshd until the test ends. It fails the test (never skips it) when sshd is missing.
func Start(t testing.TB, opts ...Option) Server {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if _, err := os.Stat(Binary); err != nil {
		t.Fatalf("%s is missing: install openssh-server (apt-get install -y openssh-server)", Binary)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	keygen := func(name, keyType string) {
		t.Helper()
		if out, err := exec.Command("ssh-keygen", "-q", "-t", keyType, "-N", "", "-C", name, "-f", filepath.Join(tmp, name)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	keygen("host_key", "ed25519")
	keygen("other_host_key", "ed25519")
	keygen("client_key", "ed25519")
	hostKeys := "HostKey " + filepath.Join(tmp, "host_key")
	if o.extraHostKey != "" {
		keygen("extra_host_key", o.extraHostKey)
		hostKeys += "\nHostKey " + filepath.Join(tmp, "extra_host_key")
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(tmp, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("authorized_keys", read("client_key.pub")+"\n")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	subsystem := "internal-sftp"
	if o.deniedRequests != "" {
		subsystem += " -P " + o.deniedRequests
	}
	config := write("sshd_config", fmt.Sprintf(`Port %s
ListenAddress 127.0.0.1
%s
AuthorizedKeysFile %s
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem sftp %s
PidFile %s
`, port, hostKeys, filepath.Join(tmp, "authorized_keys"), subsystem, filepath.Join(tmp, "sshd.pid")))
	if os.Geteuid() == 0 {
		_ = os.MkdirAll("/run/sshd", 0o755) // sshd's privilege separation directory, when run as root
	}
	cmd := exec.Command(Binary, "-D", "-e", "-f", config)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("sshd's log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s: %v\n%s", addr, err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	dir := filepath.Join(tmp, "srv")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	hostLine := func(key string) string {
		f := strings.Fields(read(key))
		return fmt.Sprintf("[127.0.0.1]:%s %s %s\n", port, f[0], f[1])
	}
	s := Server{Addr: addr, User: u.Username, Dir: dir, KeyFile: filepath.Join(tmp, "client_key"),
		KnownHosts: write("known_hosts", hostLine("host_key.pub")), OtherKnownHosts: write("other_known_hosts", hostLine("other_host_key.pub"))}
	if o.extraHostKey != "" {
		s.ExtraKnownHosts = write("extra_known_hosts", hostLine("extra_host_key.pub"))
	}
	return s
}
