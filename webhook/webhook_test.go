package webhook_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/pyng/receivables/webhook"
)

// mustSecret parses a secret the test knows to be valid.
func mustSecret(t *testing.T, s string) webhook.Secret {
	t.Helper()
	secret, err := webhook.ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret(%q): %v", s, err)
	}
	return secret
}

// secretOf makes the secret of n bytes valued b.
func secretOf(t *testing.T, n int, b byte) webhook.Secret {
	t.Helper()
	return mustSecret(t, webhook.SecretPrefix+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, n)))
}

// header is the http.Header of a delivery, as a receiver sees it.
func header(hs []webhook.Header) http.Header {
	h := http.Header{}
	for _, x := range hs {
		h.Set(x.Name, x.Value)
	}
	return h
}

// verify checks a delivery with the official Standard Webhooks library, not with this package.
func verify(t *testing.T, secret webhook.Secret, body []byte, h http.Header) error {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret.Reveal())
	if err != nil {
		t.Fatalf("standardwebhooks.NewWebhook: %v", err)
	}
	return wh.Verify(body, h)
}

// The vectors are the signing tests of the Standard Webhooks libraries (go/webhook_test.go,
// TestWebhookSign, and rust/src/lib.rs, test_sign, of libraries v0.0.1).
func TestSignGivesTheStandardWebhooksTestVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		secret    string
		id        string
		timestamp int64
		body      string
		want      string
	}{
		{
			name:      "the Go library's vector",
			secret:    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			id:        "msg_p5jXN8AQM9LWM0D4loKWxJek",
			timestamp: 1614265330,
			body:      `{"test": 2432232314}`,
			want:      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
		},
		{
			name:      "the Rust library's vector",
			secret:    "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
			id:        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
			timestamp: 1649367553,
			body:      `{"email":"test@example.com","username":"test_user"}`,
			want:      "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secret := mustSecret(t, tt.secret)
			ts := time.Unix(tt.timestamp, 0)
			if got := webhook.Sign(tt.id, ts, []byte(tt.body), secret); got != tt.want {
				t.Errorf("Sign = %q, want %q", got, tt.want)
			}
			wh, err := standardwebhooks.NewWebhook(tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			// The vectors' timestamps are years old: the library's tolerance of five minutes
			// would refuse them whatever the signature.
			h := header(webhook.Headers(tt.id, ts, []byte(tt.body), secret))
			if err := wh.VerifyIgnoringTimestamp([]byte(tt.body), h); err != nil {
				t.Errorf("the library refuses the headers: %v", err)
			}
		})
	}
}

func TestDeliveriesAreVerifiedByTheStandardWebhooksLibrary(t *testing.T) {
	t.Parallel()
	old, current, stranger := secretOf(t, 32, 1), secretOf(t, 32, 2), secretOf(t, 32, 3)
	shortest, longest := secretOf(t, webhook.MinSecretBytes, 4), secretOf(t, webhook.MaxSecretBytes, 5)
	body := []byte(`{"type":"batch.completed","data":{"batchId":"bat_1"}}`)
	tests := []struct {
		name     string
		signers  []webhook.Secret
		body     []byte
		verifier webhook.Secret
		wantOK   bool
	}{
		{"one secret verifies", []webhook.Secret{current}, body, current, true},
		{"another secret does not verify", []webhook.Secret{current}, body, stranger, false},
		{"during a rotation the old secret alone verifies", []webhook.Secret{old, current}, body, old, true},
		{"during a rotation the new secret alone verifies", []webhook.Secret{old, current}, body, current, true},
		{"during a rotation another secret does not verify", []webhook.Secret{old, current}, body, stranger, false},
		{"a secret of the least length verifies", []webhook.Secret{shortest}, body, shortest, true},
		{"a secret of the greatest length verifies", []webhook.Secret{longest}, body, longest, true},
		{"an empty body verifies", []webhook.Secret{current}, []byte{}, current, true},
		{"a body of any bytes verifies", []webhook.Secret{current}, []byte("\x00\xff. \n{}"), current, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := webhook.Headers("msg_2mQ4", time.Now(), tt.body, tt.signers...)
			err := verify(t, tt.verifier, tt.body, header(hs))
			if (err == nil) != tt.wantOK {
				t.Errorf("Verify = %v, want ok %v", err, tt.wantOK)
			}
			if n := strings.Count(hs[2].Value, "v1,"); n != len(tt.signers) {
				t.Errorf("signature header %q has %d signatures, want %d", hs[2].Value, n, len(tt.signers))
			}
		})
	}
}

func TestHeadersNameIDTimestampAndSignature(t *testing.T) {
	t.Parallel()
	secret := secretOf(t, 32, 7)
	ts := time.Date(2026, 3, 1, 12, 0, 0, 999_000_000, time.UTC)
	body := []byte(`{}`)
	got := webhook.Headers("msg_1", ts, body, secret)
	want := []webhook.Header{
		{"webhook-id", "msg_1"},
		{"webhook-timestamp", "1772366400"},
		{"webhook-signature", webhook.Sign("msg_1", ts, body, secret)},
	}
	if len(got) != len(want) {
		t.Fatalf("Headers = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("header %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestSignatureChangesWithEachSignedPart(t *testing.T) {
	t.Parallel()
	secret := secretOf(t, 32, 8)
	ts := time.Unix(1_700_000_000, 0)
	base := webhook.Sign("msg_1", ts, []byte("{}"), secret)
	for name, other := range map[string]string{
		"id":        webhook.Sign("msg_2", ts, []byte("{}"), secret),
		"timestamp": webhook.Sign("msg_1", ts.Add(time.Second), []byte("{}"), secret),
		"body":      webhook.Sign("msg_1", ts, []byte("{ }"), secret),
		"secret":    webhook.Sign("msg_1", ts, []byte("{}"), secretOf(t, 32, 9)),
	} {
		if other == base {
			t.Errorf("changing the %s leaves the signature %q", name, base)
		}
	}
	if got := webhook.Sign("msg_1", ts.Add(999*time.Millisecond), []byte("{}"), secret); got != base {
		t.Errorf("the timestamp signs in whole seconds: %q, want %q", got, base)
	}
}

func TestSignWithoutSecretsIsEmpty(t *testing.T) {
	t.Parallel()
	if got := webhook.Sign("msg_1", time.Now(), []byte("{}")); got != "" {
		t.Errorf("Sign without secrets = %q, want empty", got)
	}
}

func TestSignPanicsOnTheZeroSecret(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("Sign with the zero Secret did not panic")
		}
	}()
	webhook.Sign("msg_1", time.Now(), []byte("{}"), secretOf(t, 32, 1), webhook.Secret{})
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, n)) }
	tests := []struct {
		name    string
		in      string
		wantErr string // a part of the reason; empty when the secret is valid
	}{
		{"a key of 32 bytes is a secret", "whsec_" + b64(32), ""},
		{"a key of 24 bytes is a secret", "whsec_" + b64(24), ""},
		{"a key of 64 bytes is a secret", "whsec_" + b64(64), ""},
		{"the spec's example is a secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ""},
		{"the empty text is refused", "", "must start with whsec_"},
		{"a key without the prefix is refused", b64(32), "must start with whsec_"},
		{"the prefix in capitals is refused", "WHSEC_" + b64(32), "must start with whsec_"},
		{"another prefix is refused", "whsk_" + b64(32), "must start with whsec_"},
		{"the prefix alone is refused", "whsec_", "must be 24 to 64 bytes, not 0"},
		{"a character outside base64 is refused", "whsec_" + b64(32)[:10] + "!" + b64(32)[11:], "standard base64"},
		{"the URL alphabet is refused", "whsec_" + strings.NewReplacer("+", "-", "/", "_").Replace(b64(32)), "standard base64"},
		{"missing padding is refused", "whsec_" + strings.TrimRight(b64(32), "="), "standard base64"},
		{"a line break is refused", "whsec_" + b64(32)[:20] + "\n" + b64(32)[20:], "standard base64"},
		{"a trailing space is refused", "whsec_" + b64(32) + " ", "standard base64"},
		{"stray low bits are refused", "whsec_" + b64(32)[:42] + "x=", "standard base64"},
		{"a key of 23 bytes is refused", "whsec_" + b64(23), "must be 24 to 64 bytes, not 23"},
		{"a key of 65 bytes is refused", "whsec_" + b64(65), "must be 24 to 64 bytes, not 65"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := webhook.ParseSecret(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseSecret: %v", err)
				}
				if s.Reveal() != tt.in {
					t.Errorf("Reveal = %q, want %q", s.Reveal(), tt.in)
				}
				if got, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(tt.in, "whsec_")); !bytes.Equal(s.Key(), got) {
					t.Errorf("Key = %x, want %x", s.Key(), got)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseSecret(%q) = %v, want an error", tt.in, s)
			}
			if !errors.Is(err, webhook.ErrInvalidSecret) {
				t.Errorf("error %v does not wrap ErrInvalidSecret", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not say %q", err, tt.wantErr)
			}
			if encoded := strings.TrimPrefix(tt.in, "whsec_"); len(encoded) > 8 && strings.Contains(err.Error(), encoded[:8]) {
				t.Errorf("error %q shows the secret", err)
			}
			if !s.IsZero() {
				t.Errorf("a refused secret is not zero")
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	a, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Key()) != 32 {
		t.Errorf("key of %d bytes, want 32", len(a.Key()))
	}
	if a.Reveal() == b.Reveal() {
		t.Errorf("two new secrets are the same %q", a)
	}
	parsed, err := webhook.ParseSecret(a.Reveal())
	if err != nil {
		t.Fatalf("a new secret does not parse: %v", err)
	}
	if !bytes.Equal(parsed.Key(), a.Key()) {
		t.Errorf("the parsed secret differs from the new one")
	}
	body := []byte(`{"a":1}`)
	if err := verify(t, a, body, header(webhook.Headers("msg_1", time.Now(), body, a))); err != nil {
		t.Errorf("the library refuses a new secret's signature: %v", err)
	}
}

func TestSecretKeyIsACopy(t *testing.T) {
	t.Parallel()
	s := secretOf(t, 32, 1)
	s.Key()[0] ^= 0xff
	if s.Key()[0] != 1 {
		t.Error("changing Key's result changed the secret")
	}
}

func TestSecretStaysOutOfLogs(t *testing.T) {
	t.Parallel()
	s := secretOf(t, 32, 1)
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("rotated", "secret", s)
	if strings.Contains(buf.String(), strings.TrimPrefix(s.Reveal(), "whsec_")) {
		t.Errorf("the log shows the secret: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "secret=whsec_[redacted]") {
		t.Errorf("the log does not mark the redacted secret: %s", buf.String())
	}
	holder := struct{ Secret, Previous webhook.Secret }{s, s}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(verb, holder); strings.Contains(got, strings.TrimPrefix(s.Reveal(), "whsec_")) || !strings.Contains(got, "whsec_[redacted]") {
			t.Errorf("%s of a struct holding the secret = %s, want it redacted", verb, got)
		}
	}
}
