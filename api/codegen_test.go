package api_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocumentGeneratesAGoClient generates a Go client (types and client) from the document with
// oapi-codegen at its ordinary settings, as a partner would, and compiles it: the document must
// stay within what the generator reads (no boolean schemas, no two components that make one Go
// type name).
func TestDocumentGeneratesAGoClient(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gen := exec.Command("go", "tool", "-modfile=../tools/go.mod", "oapi-codegen",
		"-generate", "types,client", "-package", "pyngapi", "-o", filepath.Join(dir, "client.gen.go"), "openapi.yaml")
	var stderr bytes.Buffer
	gen.Stderr = &stderr
	if out, err := gen.Output(); err != nil || len(generatorWarnings(stderr.Bytes())) > 0 || len(out) > 0 {
		t.Fatalf("oapi-codegen: %v\n%s%s", err, out, stderr.Bytes())
	}
	code, err := os.ReadFile(filepath.Join(dir, "client.gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"func (c *Client) InviteCustomer(", "func (c *Client) ListCustomers(", "func (c *Client) GetCustomer(",
		"func (c *Client) RevokeCustomer(", "func (c *Client) SubmitBatch(", "func (c *Client) ListBatches(",
		"func (c *Client) GetBatch(", "func (c *Client) SimulateSignup(", "func (c *Client) SimulateDeadline(",
		"type Link struct", "type Row struct", "type BatchDetail struct", "type ErrorResponse struct",
	} {
		if !bytes.Contains(code, []byte(want)) {
			t.Errorf("the generated client has no %q", strings.TrimSuffix(want, "("))
		}
	}
	goMod := "module example.com/pyngapi\n\ngo 1.26\n\nrequire github.com/oapi-codegen/runtime v1.9.0\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(goMod), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "./...")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the generated client does not compile: %v\n%s", err, out)
	}
}

// generatorWarnings is what the generator wrote to stderr but the go command's own lines: on a
// machine whose module cache does not hold the tool yet, go tool first says what it downloads.
func generatorWarnings(stderr []byte) []byte {
	var rest []byte
	for line := range bytes.Lines(stderr) {
		if !bytes.HasPrefix(line, []byte("go: downloading ")) {
			rest = append(rest, line...)
		}
	}
	return rest
}
