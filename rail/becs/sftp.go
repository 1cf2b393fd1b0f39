package becs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/pyng/receivables/rail/becs/aba"
)

// Destination is where the rail delivers its files. A delivery is in two steps, with the
// file's record in between (Rail.Deliver): the file is staged whole under a temporary name, a
// dot file that neither the bank nor an operator takes for a file to lodge, then, once marked
// delivered, published under its own name. A file staged and not yet marked is staged again
// after a crash, which the bank never saw; one marked is published and never staged again, so a
// bank that takes each file as it arrives never gets one twice.
type Destination interface {
	// Stage writes content whole as name's temporary file, replacing what a stage cut short left
	// there. A file already published there with the same bytes needs no staging.
	Stage(ctx context.Context, name string, content []byte) error
	// Publish renames name's temporary file to name, atomically: the destination holds either no
	// file of that name or the whole of it. With no temporary file left (published before, by a
	// run cut short after its rename) it does nothing.
	Publish(ctx context.Context, name string) error
	// Staged reports whether name's temporary file is there: none, for a file delivered and not
	// recorded published or put aside, means it was published (by a run cut short after its
	// rename).
	Staged(ctx context.Context, name string) (bool, error)
	// Unstage removes name's temporary file, for a file that is not to be published (too late to
	// lodge, or lodged otherwise), and reports whether there was one.
	Unstage(ctx context.Context, name string) (bool, error)
	// SetAside moves the published copy of name, a file lodged since, out of the way of the
	// files still to be lodged (an outbox's lodged/), so that no one uploads it to the bank
	// again. The bank's server keeps what it was published, the bank's to keep.
	SetAside(ctx context.Context, name string) error
	// Remove removes the copies of name kept for Pyng, published, set aside or staged, once the
	// file's content is erased: Pyng keeps no copy of bank details past their retention. The
	// bank's server keeps what it was published, the bank's to keep.
	Remove(ctx context.Context, name string) error
	// Lodges reports whether a file put there is lodged with the bank (the bank's SFTP server),
	// rather than waiting for an operator to lodge it (an outbox directory).
	Lodges() bool
	// String names the destination in logs, without credentials.
	String() string
}

// stagedName is the temporary name a file is staged under: a dot file, which the bank's and the
// operator's tools pass over.
func stagedName(name string) string { return "." + name + ".tmp" }

// Dir is an outbox directory an operator uploads files from.
type Dir string

// Stage writes the file under its temporary name and syncs it and the directory: the file is
// marked delivered next, and a staged copy missing after a crash of the machine would be read as
// published (Staged).
func (d Dir) Stage(_ context.Context, name string, content []byte) error {
	if same, err := sameContent(filepath.Join(string(d), name), content); err != nil || same {
		return err
	}
	if err := writeSynced(filepath.Join(string(d), stagedName(name)), content); err != nil {
		return err
	}
	return syncDir(string(d))
}

// Publish renames the staged file and syncs the directory.
func (d Dir) Publish(_ context.Context, name string) error {
	err := os.Rename(filepath.Join(string(d), stagedName(name)), filepath.Join(string(d), name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(string(d))
}

// Staged reports whether the staged copy of the file is there.
func (d Dir) Staged(_ context.Context, name string) (bool, error) {
	_, err := os.Stat(filepath.Join(string(d), stagedName(name)))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Unstage removes the staged copy of the file.
func (d Dir) Unstage(_ context.Context, name string) (bool, error) {
	err := os.Remove(filepath.Join(string(d), stagedName(name)))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// lodgedDir is the folder of an outbox that holds the copies of the files lodged.
const lodgedDir = "lodged"

// SetAside moves the outbox's copy of a file lodged to lodged/, if it is still in the outbox.
func (d Dir) SetAside(_ context.Context, name string) error {
	aside := filepath.Join(string(d), lodgedDir)
	if err := os.MkdirAll(aside, 0o700); err != nil {
		return err
	}
	err := os.Rename(filepath.Join(string(d), name), filepath.Join(aside, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // set aside before, or taken away by the operator
	}
	if err != nil {
		return err
	}
	return errors.Join(syncDir(aside), syncDir(string(d)))
}

// Remove removes the outbox's copy of the file, set aside or not, and any staged copy, those an
// earlier release left (named .NAME.RANDOM.tmp) too.
func (d Dir) Remove(_ context.Context, name string) error {
	earlier, err := filepath.Glob(filepath.Join(string(d), "."+name+".*.tmp"))
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range append([]string{filepath.Join(string(d), name), filepath.Join(string(d), lodgedDir, name), filepath.Join(string(d), stagedName(name))}, earlier...) {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Lodges is false: the operator lodges the file.
func (Dir) Lodges() bool     { return false }
func (d Dir) String() string { return string(d) }

// Destinations puts each file to every destination it holds: an outbox directory (the
// operator's copy) and the bank's SFTP server (which lodges it), say. A file is staged to every
// destination before it is marked delivered, and lodged, and then published to each; a stage or
// a publish that fails part way is done again, which each destination allows.
type Destinations []Destination

// each calls do with each destination in turn, stopping at the first that fails, whose error it
// names the destination in.
func (ds Destinations) each(do func(Destination) error) error {
	for _, d := range ds {
		if err := do(d); err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
	}
	return nil
}

// Stage stages the file to each destination in turn, stopping at the first that fails.
func (ds Destinations) Stage(ctx context.Context, name string, content []byte) error {
	return ds.each(func(d Destination) error { return d.Stage(ctx, name, content) })
}

// Publish publishes the file to each destination in turn, stopping at the first that fails.
func (ds Destinations) Publish(ctx context.Context, name string) error {
	return ds.each(func(d Destination) error { return d.Publish(ctx, name) })
}

// Staged reports whether any destination has a staged copy of the file: they are published to
// in turn, so a file is with the bank only once none has.
func (ds Destinations) Staged(ctx context.Context, name string) (bool, error) {
	for _, d := range ds {
		staged, err := d.Staged(ctx, name)
		if err != nil || staged {
			if err != nil {
				err = fmt.Errorf("%s: %w", d, err)
			}
			return staged, err
		}
	}
	return false, nil
}

// Unstage removes the staged copies from every destination, and reports whether any had one.
func (ds Destinations) Unstage(ctx context.Context, name string) (bool, error) {
	found := false
	for _, d := range ds {
		staged, err := d.Unstage(ctx, name)
		if err != nil {
			return found, fmt.Errorf("%s: %w", d, err)
		}
		found = found || staged
	}
	return found, nil
}

// Remove removes the copies each destination keeps for Pyng.
func (ds Destinations) Remove(ctx context.Context, name string) error {
	return ds.each(func(d Destination) error { return d.Remove(ctx, name) })
}

// SetAside sets the file aside in each destination in turn, stopping at the first that fails.
func (ds Destinations) SetAside(ctx context.Context, name string) error {
	return ds.each(func(d Destination) error { return d.SetAside(ctx, name) })
}

// Lodges is true when any of the destinations lodges what it is given.
func (ds Destinations) Lodges() bool {
	for _, d := range ds {
		if d.Lodges() {
			return true
		}
	}
	return false
}

func (ds Destinations) String() string {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.String()
	}
	return strings.Join(names, " and ")
}

// SFTPConfig says how to reach the bank's SFTP server.
type SFTPConfig struct {
	// URL is sftp://user@host:port/dir: where files are put (dir relative to the login directory
	// unless it starts with a second slash).
	URL string
	// KeyFile is the client's private key (OpenSSH format, unencrypted).
	KeyFile string
	// KnownHosts is a known_hosts file holding the server's host key: no other key is accepted.
	KnownHosts string
	// ReturnsDir is the server's directory the bank puts returns files in ("" for none).
	ReturnsDir string
	// Timeout bounds each session with the server: connecting and a whole file's transfer, or a
	// look at the returns directory with the imports of the files it reads (0:
	// DefaultSFTPTimeout; at most MaxSFTPTimeout).
	Timeout time.Duration
	// ReturnsSettle is how long a returns file must be seen unchanged before it is read (0:
	// DefaultReturnsSettle).
	ReturnsSettle time.Duration
	// ReturnsIncompleteWait is how long a returns file must be seen unchanged before it is
	// imported, and how long one that reads as incomplete (aba.ErrIncomplete) is left in place
	// while it is seen unchanged, for an upload that stalled to resume, before it is rejected (0:
	// DefaultReturnsIncompleteWait; at least ReturnsSettle). See FetchReturns.
	ReturnsIncompleteWait time.Duration
}

// DefaultReturnsSettle is SFTPConfig.ReturnsSettle when it is 0: less than a minute, so that the
// returns task, run every minute, reads a file at its second look, however close the two looks.
const DefaultReturnsSettle = 50 * time.Second

// DefaultReturnsIncompleteWait is SFTPConfig.ReturnsIncompleteWait when it is 0: far longer than
// an upload stalls and resumes, short enough that returns, which come days after their debits,
// are not a day late, nor those of a file the bank must send again.
const DefaultReturnsIncompleteWait = time.Hour

// DefaultSFTPTimeout is SFTPConfig.Timeout when it is 0.
const DefaultSFTPTimeout = time.Minute

// MaxSFTPTimeout bounds SFTPConfig.Timeout: a delivery reaches the server in two sessions at
// most while it claims its file, and a claim older than staleClaim is taken for one cut short.
const MaxSFTPTimeout = staleClaim / 2

// SFTP is a directory on the bank's SFTP server.
type SFTP struct {
	addr, dir, returnsDir string
	timeout               time.Duration
	client                *ssh.ClientConfig
	display               string

	settle         time.Duration // SFTPConfig.ReturnsSettle
	incompleteWait time.Duration // SFTPConfig.ReturnsIncompleteWait
	mu             sync.Mutex
	// sighted is each returns file as FetchReturns last listed it, by name.
	sighted map[string]sighting
}

// sighting is a returns file's size and modification time, as a listing shows them, and since
// when (this process's clock) the listings have shown them so.
type sighting struct {
	size  int64
	mod   time.Time
	since time.Time
	whole bool // read whole at this size and modification time: not read again before the wait
}

// OpenSFTP checks cfg and reads its key and known hosts; it connects only when used.
func OpenSFTP(cfg SFTPConfig) (*SFTP, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "sftp" || u.Host == "" || u.User == nil || u.User.Username() == "" {
		return nil, fmt.Errorf("the SFTP URL %q is not of the form sftp://user@host:port/dir", cfg.URL)
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		return nil, errors.New("the SFTP URL must not hold a password: the rail logs in with its key file")
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "22")
	}
	key, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("the SFTP key file: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("the SFTP key file %s: %w", cfg.KeyFile, err)
	}
	if cfg.KnownHosts == "" {
		return nil, errors.New("the SFTP server's host key must be pinned: set its known_hosts file")
	}
	hostKeys, err := knownhosts.New(cfg.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("the SFTP known hosts file: %w", err)
	}
	algorithms, err := pinnedAlgorithms(hostKeys, addr)
	if err != nil {
		return nil, fmt.Errorf("the SFTP known hosts file: %w", err)
	}
	timeout := cfg.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultSFTPTimeout
	case timeout < 0 || timeout > MaxSFTPTimeout:
		return nil, fmt.Errorf("the SFTP timeout %v is not between 0 and %v", timeout, MaxSFTPTimeout)
	}
	settle := cfg.ReturnsSettle
	if settle <= 0 {
		settle = DefaultReturnsSettle
	}
	incompleteWait := cfg.ReturnsIncompleteWait
	if incompleteWait <= 0 {
		incompleteWait = DefaultReturnsIncompleteWait
	}
	if incompleteWait < settle {
		return nil, fmt.Errorf("the wait for an incomplete returns file, %v, is shorter than the settle time, %v: it would be rejected at its first read", incompleteWait, settle)
	}
	dir := strings.TrimPrefix(u.Path, "/")
	if dir == "" {
		dir = "."
	}
	return &SFTP{addr: addr, dir: dir, returnsDir: cfg.ReturnsDir, timeout: timeout, settle: settle, incompleteWait: incompleteWait, display: "sftp://" + u.User.Username() + "@" + addr + "/" + dir,
		client: &ssh.ClientConfig{User: u.User.Username(), Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hostKeys, HostKeyAlgorithms: algorithms, Timeout: timeout}}, nil
}

// pinnedAlgorithms are the host key algorithms of the keys hostKeys pins for addr, for the
// client to ask the server for those only: a server with several host keys (RSA and Ed25519,
// say) would otherwise present the one the client prefers, which a known_hosts pinning another
// refuses. It is nil (the client's defaults) when no key is pinned for addr (the connection is
// refused anyway) or only a certificate authority (@cert-authority lines).
//
// knownhosts (of golang.org/x/crypto v0.58.0) does not list the keys of an address; its callback
// does, in the KeyError it returns for a key it does not know.
func pinnedAlgorithms(hostKeys ssh.HostKeyCallback, addr string) ([]string, error) {
	err := hostKeys(addr, &net.TCPAddr{IP: net.IPv4zero}, noKey{})
	var keyErr *knownhosts.KeyError
	if !errors.As(err, &keyErr) {
		return nil, err // nil: noKey matched, which it cannot
	}
	var algorithms []string
	for _, k := range keyErr.Want {
		for _, a := range keyAlgorithms(k.Key.Type()) {
			if !slices.Contains(algorithms, a) {
				algorithms = append(algorithms, a)
			}
		}
	}
	return algorithms, nil
}

// keyAlgorithms are the host key algorithms that sign with a key of the type keyType.
func keyAlgorithms(keyType string) []string {
	switch keyType {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	case ssh.CertAlgoRSAv01:
		return []string{ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01, ssh.CertAlgoRSAv01}
	}
	return []string{keyType}
}

// noKey is a public key that matches no known host's.
type noKey struct{}

func (noKey) Type() string                        { return "none" }
func (noKey) Marshal() []byte                     { return []byte("\x00\x00\x00\x04none") }
func (noKey) Verify([]byte, *ssh.Signature) error { return errors.New("no key") }

func (s *SFTP) String() string { return s.display }

// Lodges is true: a file on the bank's server is lodged.
func (*SFTP) Lodges() bool { return true }

// session connects and runs fn with an SFTP client, within the timeout.
func (s *SFTP) session(ctx context.Context, fn func(c *sftp.Client) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("sftp: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	sc, chans, reqs, err := ssh.NewClientConn(conn, s.addr, s.client)
	if err != nil {
		conn.Close()
		return fmt.Errorf("sftp: %w", err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()
	c, err := sftp.NewClient(client)
	if err != nil {
		return fmt.Errorf("sftp: %w", err)
	}
	defer c.Close()
	return fn(c)
}

// Stage uploads content as name's temporary file (a dot file), unless a file of that name is
// there with the same bytes (published by a run whose record was cut short, before files were
// staged first).
func (s *SFTP) Stage(ctx context.Context, name string, content []byte) error {
	return s.session(ctx, func(c *sftp.Client) error {
		if same, err := sameFile(c, path.Join(s.dir, name), content); err != nil || same {
			return err
		}
		tmp := path.Join(s.dir, stagedName(name))
		f, err := c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			return fmt.Errorf("sftp: create %s: %w", tmp, err)
		}
		// The file holds customers' accounts in plaintext: readable by its owner alone, as the
		// outbox's copy, before a byte is written. A server that refuses to change the mode
		// keeps its own (its policy, which the upload cannot change).
		_ = f.Chmod(0o600)
		half := len(content) / 2
		if _, err := f.Write(content[:half]); err != nil {
			f.Close()
			return fmt.Errorf("sftp: write %s: %w", tmp, err)
		}
		if MidSFTPUpload != nil {
			MidSFTPUpload()
		}
		if _, err := f.Write(content[half:]); err != nil {
			f.Close()
			return fmt.Errorf("sftp: write %s: %w", tmp, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("sftp: close %s: %w", tmp, err)
		}
		return nil
	})
}

// Publish renames the staged file to name on the server (posix-rename, atomic). A server whose
// rename copies and then deletes may have left both names when interrupted: a file of the name
// there with the staged copy's bytes is the file published, and the staged copy is removed.
func (s *SFTP) Publish(ctx context.Context, name string) error {
	return s.session(ctx, func(c *sftp.Client) error {
		tmp, final := path.Join(s.dir, stagedName(name)), path.Join(s.dir, name)
		if _, err := c.Stat(tmp); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		err := rename(c, tmp, final, false)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if same, serr := sameFiles(c, tmp, final); serr != nil || !same {
			return fmt.Errorf("sftp: rename %s to %s: %w", tmp, final, errors.Join(err, serr))
		}
		if rerr := c.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return fmt.Errorf("sftp: %s is published, with the bytes of %s, which could not be removed: %w", final, tmp, rerr)
		}
		return nil
	})
}

// sameFiles reports whether the files a and b are both there with the same bytes.
func sameFiles(c *sftp.Client, a, b string) (bool, error) {
	ia, err := c.Stat(a)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sftp: stat %s: %w", a, err)
	}
	ib, err := c.Stat(b)
	if errors.Is(err, fs.ErrNotExist) || err == nil && ia.Size() != ib.Size() {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sftp: stat %s: %w", b, err)
	}
	f, err := c.Open(a)
	if err != nil {
		return false, fmt.Errorf("sftp: open %s: %w", a, err)
	}
	defer f.Close()
	content, err := io.ReadAll(io.LimitReader(f, ia.Size()+1))
	if err != nil {
		return false, fmt.Errorf("sftp: read %s: %w", a, err)
	}
	return sameFile(c, b, content)
}

// Staged reports whether the staged copy of the file is on the server.
func (s *SFTP) Staged(ctx context.Context, name string) (bool, error) {
	staged := false
	err := s.session(ctx, func(c *sftp.Client) error {
		_, err := c.Stat(path.Join(s.dir, stagedName(name)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		staged = err == nil
		return err
	})
	return staged, err
}

// Unstage removes the staged copy of the file from the server.
func (s *SFTP) Unstage(ctx context.Context, name string) (bool, error) {
	staged := false
	err := s.session(ctx, func(c *sftp.Client) error {
		err := c.Remove(path.Join(s.dir, stagedName(name)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		staged = err == nil
		return err
	})
	return staged, err
}

// Remove removes a staged copy left on the server; the file published there is the bank's.
// SetAside does nothing: what the bank's server was given is the bank's.
func (s *SFTP) SetAside(context.Context, string) error { return nil }

func (s *SFTP) Remove(ctx context.Context, name string) error {
	_, err := s.Unstage(ctx, name)
	return err
}

// rename renames from to to on the server: by OpenSSH's posix-rename, atomic, replacing a to that
// exists; or, on a server that refuses it (many banks' are not OpenSSH), by the protocol's own
// rename, which refuses a to that exists: replace says whether to remove it first (a returns
// file's archived copy, of a name the bank used again). A file is published only from its staged
// copy, so its name is there already only if a rename of it was interrupted half done (Publish).
func rename(c *sftp.Client, from, to string, replace bool) error {
	err := c.PosixRename(from, to)
	var status *sftp.StatusError // OP_UNSUPPORTED and others; a refusal comes as fs.ErrPermission
	if err == nil || errors.Is(err, fs.ErrNotExist) || !errors.As(err, &status) && !errors.Is(err, fs.ErrPermission) {
		return err // done, or a failure of the connection: the next run tries again
	}
	if replace {
		if err := c.Remove(to); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s, to replace it: %w", to, err)
		}
	}
	if rerr := c.Rename(from, to); rerr != nil {
		return fmt.Errorf("%w (and the protocol's rename: %w)", err, rerr)
	}
	return nil
}

// MidSFTPUpload, when set by a test, runs when half of a file is written to the server.
var MidSFTPUpload func()

func sameFile(c *sftp.Client, name string, content []byte) (bool, error) {
	f, err := c.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sftp: open %s: %w", name, err)
	}
	defer f.Close()
	got, err := io.ReadAll(io.LimitReader(f, int64(len(content))+1))
	if err != nil {
		return false, fmt.Errorf("sftp: read %s: %w", name, err)
	}
	return bytes.Equal(got, content), nil
}

// ReturnsFile is a returns file found on the server.
type ReturnsFile struct {
	Name    string
	Content []byte
	// Unchanged is how long the listings have shown the file as it is (its size and modification
	// time), by this process's clock: at least the settle time.
	Unchanged time.Duration
	// Abandoned is whether Unchanged has reached the wait for an incomplete file
	// (SFTPConfig.ReturnsIncompleteWait): the upload is then taken to have ended. A file that
	// reads whole is given only then; one that reads as incomplete is then rejected, rather than
	// left in place.
	Abandoned bool
}

// maxReturnsFile bounds a returns file fetched: 200,000 items.
const maxReturnsFile = 200_000 * 122

// FetchReturns reads the returns files in the returns directory (not dot files, nor
// directories), for fn to import each; a file fn accepts (nil) is moved into imported/, one it
// refuses for its content (rejected true) into rejected/, so that each is imported once. It
// returns the errors of fn that are not a rejection, nor an incomplete file's.
//
// A file is read only once it is settled: listed with the same size and modification time for
// at least the settle time (SFTPConfig.ReturnsSettle), by this process's clock, and read whole at
// that size. A file the bank is still uploading, which would not read as a returns file, is thus
// left for a later call rather than rejected, however soon a call follows another (a retry of
// the task); the server's clock is not compared with this one's.
//
// An upload may stall for longer than the settle time, then resume. A file for which fn returns
// an error that is aba.ErrIncomplete (it ends early and reads well up to there, as one still
// being uploaded does) is therefore left in place, and read again at each later call, until the
// listings have shown it unchanged for the wait for an incomplete file
// (SFTPConfig.ReturnsIncompleteWait): then, given to fn as Abandoned, it is moved into rejected/
// as a file fn rejects is.
//
// A file cut short may read whole all the same: one of several blocks whose upload stalled just
// after a block's file total record reads as a whole file of the blocks before, and the items of
// the blocks after would never be imported. No reader can tell it, and a file of one block may be
// the first block of several; so a file that reads whole (aba.ReadBlocks) is given to fn only
// once it has been unchanged for that wait too, whatever its blocks (returns come days after their
// debits: an hour more is of no account): by the listings (then as Abandoned), or, when the
// settled file's modification time on the bank's server is older, by that (so that a process
// restarted, its sightings lost, does not wait again from its start). Until then it is left in
// place, and not read again while unchanged. A file that does not read whole is given to fn once
// settled, as before: fn rejects one that is malformed at once.
func (s *SFTP) FetchReturns(ctx context.Context, fn func(f ReturnsFile) (rejected bool, err error)) error {
	if s.returnsDir == "" {
		return nil
	}
	return s.session(ctx, func(c *sftp.Client) error {
		entries, err := c.ReadDir(s.returnsDir)
		if err != nil {
			return fmt.Errorf("sftp: list %s: %w", s.returnsDir, err)
		}
		var errs []error
		for _, e := range entries {
			// A link or a device is not a file the bank uploaded: it is set aside unread, once
			// (read through, it would never settle, and be looked at every minute unseen).
			if e.IsDir() || e.Mode().IsRegular() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			name, dir := path.Join(s.returnsDir, e.Name()), path.Join(s.returnsDir, "rejected")
			if err := c.MkdirAll(dir); err != nil {
				errs = append(errs, fmt.Errorf("sftp: mkdir %s: %w", dir, err))
			} else if err := rename(c, name, path.Join(dir, e.Name()), true); err != nil {
				errs = append(errs, fmt.Errorf("sftp: move %s to %s: %w", name, dir, err))
			} else {
				errs = append(errs, fmt.Errorf("sftp: %s in the returns directory is not a regular file (%v): moved to rejected/ unread", name, e.Mode().Type()))
			}
		}
		for _, e := range s.settled(entries) {
			abandoned := e.unchanged >= s.incompleteWait
			// A file that reads whole has waited once unchanged for the wait by this process's
			// sightings or, older, by its modification time on the bank's server: this process's
			// sightings start again when it does, and a deployment restarted more often than the
			// wait would otherwise never import a file. SFTP gives that time in whole seconds,
			// cut down: a second more is counted.
			waited := abandoned || time.Since(e.ModTime()) >= s.incompleteWait+time.Second
			if e.whole && !waited {
				continue // read whole before, and unchanged since: left until the wait
			}
			name := path.Join(s.returnsDir, e.Name())
			content, err := readAll(c, name)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if int64(len(content)) != e.Size() {
				s.forget(e.Name()) // written to since it was listed: not settled after all
				continue
			}
			if !waited && readsWhole(content) {
				s.readWhole(e.Name()) // it may be the blocks before a stalled upload's cut: left until the wait
				continue
			}
			f := ReturnsFile{Name: e.Name(), Content: content, Unchanged: e.unchanged, Abandoned: abandoned}
			rejected, err := fn(f)
			incomplete := errors.Is(err, aba.ErrIncomplete)
			to := "imported"
			switch {
			case incomplete && !f.Abandoned:
				continue // its upload may resume: read again at the next call, the sighting kept
			case rejected || incomplete:
				to = "rejected"
			case err != nil:
				errs = append(errs, err)
				continue
			}
			dir := path.Join(s.returnsDir, to)
			if err := c.MkdirAll(dir); err != nil {
				errs = append(errs, fmt.Errorf("sftp: mkdir %s: %w", dir, err))
				continue
			}
			if err := rename(c, name, path.Join(dir, e.Name()), true); err != nil {
				errs = append(errs, fmt.Errorf("sftp: move %s to %s: %w", name, dir, err))
				continue
			}
			s.forget(e.Name()) // a file of the same name later is another file
		}
		return errors.Join(errs...)
	})
}

// settledFile is a returns file the listings have shown as it is for the settle time at least.
type settledFile struct {
	fs.FileInfo
	unchanged time.Duration // how long the listings have shown it so
	whole     bool          // read whole so before (sighting.whole)
}

// settled notes the returns files of a listing and returns those the listings have shown as they
// are now for the settle time.
func (s *SFTP) settled(entries []fs.FileInfo) []settledFile {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	previous := s.sighted
	s.sighted = map[string]sighting{}
	var settled []settledFile
	for _, e := range entries {
		if !e.Mode().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		seen := sighting{size: e.Size(), mod: e.ModTime(), since: now}
		if before, ok := previous[e.Name()]; ok && before.size == seen.size && before.mod.Equal(seen.mod) {
			seen = before
		}
		s.sighted[e.Name()] = seen
		if unchanged := now.Sub(seen.since); unchanged >= s.settle {
			settled = append(settled, settledFile{FileInfo: e, unchanged: unchanged, whole: seen.whole})
		}
	}
	return settled
}

// readsWhole reports whether content reads as a whole file (aba.ReadBlocks): as a returns file or
// not, of one block or several.
func readsWhole(content []byte) bool {
	_, err := aba.ReadBlocks(bytes.NewReader(content))
	return err == nil
}

// readWhole notes that the returns file, as last listed, reads whole.
func (s *SFTP) readWhole(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seen, ok := s.sighted[name]; ok {
		seen.whole = true
		s.sighted[name] = seen
	}
}

// forget drops the sighting of a returns file, so that it is settled again before it is read.
func (s *SFTP) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sighted, name)
}

func readAll(c *sftp.Client, name string) ([]byte, error) {
	f, err := c.Open(name)
	if err != nil {
		return nil, fmt.Errorf("sftp: open %s: %w", name, err)
	}
	defer f.Close()
	content, err := io.ReadAll(io.LimitReader(f, maxReturnsFile+1))
	if err != nil {
		return nil, fmt.Errorf("sftp: read %s: %w", name, err)
	}
	if len(content) > maxReturnsFile {
		return nil, fmt.Errorf("sftp: %s is larger than %d bytes", name, maxReturnsFile)
	}
	return content, nil
}
