package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pyng/receivables/seal"
)

// buildServer compiles cmd/pyng of the module the bench runs in into dir, without cgo as the
// server is shipped.
func buildServer(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run pyng-bench inside the module (or pass -pyng BINARY)")
	}
	bin := filepath.Join(dir, "pyng")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/pyng")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/pyng: %w\n%s", err, out)
	}
	return bin, nil
}

// process is a running "pyng serve" and what the bench learnt from its first-run banner.
type process struct {
	cmd     *exec.Cmd
	pid     int
	baseURL string
	creds   credentials
	logPath string
	exited  chan error
}

// credentials are the demo organisation's site and API client, from the banner.
type credentials struct {
	siteID, clientID, secret string
}

// startServer starts "pyng serve" on a free loopback port and an empty database, with the
// sandbox rail settling at once, and waits for the banner with the demo credentials.
func startServer(ctx context.Context, bin, databaseURL, dir string) (*process, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(),
		"PYNG_ADDR="+addr,
		"PYNG_DATABASE_URL="+databaseURL,
		"PYNG_SANDBOX=true",
		"PYNG_SANDBOX_SETTLEMENT_DELAY=0",
		"PYNG_RATE_LIMIT=0", // the bench is one client pushing the server to its limit
		"PYNG_LOG_FORMAT=text",
		"PYNG_ENCRYPTION_KEY="+benchKeyRing(),
	)
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	logFile.Close() // the child has its own descriptor
	p := &process{cmd: cmd, pid: cmd.Process.Pid, baseURL: "http://" + addr, logPath: logPath, exited: make(chan error, 1)}
	banner := make(chan string, 1)
	go func() {
		var b strings.Builder
		s := bufio.NewScanner(stdout)
		sent := false
		for s.Scan() {
			if sent {
				continue
			}
			fmt.Fprintln(&b, s.Text())
			if strings.Contains(s.Text(), "curl ") {
				banner <- b.String()
				sent = true
			}
		}
		if !sent {
			banner <- b.String()
		}
	}()
	go func() { p.exited <- cmd.Wait() }()
	select {
	case text := <-banner:
		if p.creds, err = parseBanner(text); err != nil {
			p.stop()
			return nil, fmt.Errorf("%w; server log: %s", err, p.tail())
		}
	case err := <-p.exited:
		return nil, fmt.Errorf("server exited before it was ready: %v; log: %s", err, p.tail())
	case <-time.After(60 * time.Second):
		p.stop()
		return nil, fmt.Errorf("no banner within 60s; log: %s", p.tail())
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
	return p, waitReady(ctx, p.baseURL)
}

var bannerFields = map[string]*regexp.Regexp{
	"site":          regexp.MustCompile(`site\s+(site_\S+)`),
	"client id":     regexp.MustCompile(`client id\s+(\S+)`),
	"client secret": regexp.MustCompile(`client secret\s+(\S+)`),
}

func parseBanner(text string) (credentials, error) {
	found := map[string]string{}
	for name, re := range bannerFields {
		m := re.FindStringSubmatch(text)
		if m == nil {
			return credentials{}, fmt.Errorf("the server printed no %s in its first-run banner (is the database empty?): %q", name, text)
		}
		found[name] = m[1]
	}
	return credentials{siteID: found["site"], clientID: found["client id"], secret: found["client secret"]}, nil
}

func waitReady(ctx context.Context, baseURL string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(baseURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server not ready within 30s: %v", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop ends the server with SIGTERM (it finishes in-flight work), killing it after 30 s.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// tail is the end of the server's log, for error messages.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// errorLines counts the server log's lines at level ERROR.
func (p *process) errorLines() int {
	f, err := os.Open(p.logPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		if bytes.Contains(s.Bytes(), []byte("level=ERROR")) {
			n++
		}
	}
	return n
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// memory reads a process's resident set size now (VmRSS) and at its peak (VmHWM), in bytes,
// from /proc/PID/status.
func memory(pid int) (rss, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	return rss, peak
}

// resetPeak starts a new peak RSS for the process (writing 5 to /proc/PID/clear_refs, Linux 4.0
// and later), so that each scenario reports its own peak. It reports whether it could.
func resetPeak(pid int) bool {
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/clear_refs", pid), os.O_WRONLY, 0)
	if err != nil {
		return false
	}
	_, err = io.WriteString(f, "5")
	return errors.Join(err, f.Close()) == nil
}

// benchKeyRing is a key ring of one new key, for the server under test: outside a sandbox on
// SQLite the server needs one.
func benchKeyRing() string {
	entry, err := seal.Generate("bench")
	if err != nil {
		panic(err) // the id is valid
	}
	return entry
}
