// Package webhook holds what a signed webhook is, following the Standard Webhooks specification
// (https://www.standardwebhooks.com): the signing secret, the signature and headers of a delivery,
// and the rules a partner's endpoint URL must follow. It knows nothing of HTTP transport; sending
// is the business of webhook/deliver.
//
// A delivery carries three headers:
//
//	webhook-id:        the message id, the same on every attempt of one message
//	webhook-timestamp: the attempt's time in Unix seconds
//	webhook-signature: v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>
//
// The signature header holds one such value per secret, separated by a space: while a secret is
// rotated, both the old and the new secret sign, so the partner's receiver verifies with either.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// The names of the headers of a delivery.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts the text form of every secret.
const SecretPrefix = "whsec_"

// The bounds of a secret's key, in bytes (the Standard Webhooks specification's), and the size
// NewSecret makes.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
	NewSecretBytes = 32
)

// ErrInvalidSecret is the error of ParseSecret, which wraps it with the reason.
var ErrInvalidSecret = errors.New("invalid webhook secret")

// Secret is a signing secret: whsec_ followed by the standard base64 of its key. The zero Secret
// has no key and signs nothing.
type Secret struct {
	key []byte
}

// NewSecret makes a secret of NewSecretBytes random bytes.
func NewSecret() (Secret, error) {
	key := make([]byte, NewSecretBytes)
	if _, err := rand.Read(key); err != nil {
		return Secret{}, fmt.Errorf("new webhook secret: %w", err)
	}
	return Secret{key: key}, nil
}

// ParseSecret reads a secret in its text form: the prefix whsec_ and the standard base64 (padded)
// of MinSecretBytes to MaxSecretBytes bytes. Errors wrap ErrInvalidSecret and never show the
// secret.
func ParseSecret(s string) (Secret, error) {
	encoded, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return Secret{}, fmt.Errorf("%w: it must start with %s", ErrInvalidSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	// The decoder skips line breaks and ignores stray low bits; only the canonical form is a
	// secret, so that one key has one text.
	if err != nil || base64.StdEncoding.EncodeToString(key) != encoded {
		return Secret{}, fmt.Errorf("%w: what follows %s must be standard base64", ErrInvalidSecret, SecretPrefix)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return Secret{}, fmt.Errorf("%w: its key must be %d to %d bytes, not %d", ErrInvalidSecret, MinSecretBytes, MaxSecretBytes, len(key))
	}
	return Secret{key: key}, nil
}

// Reveal is the secret's text form, whsec_ and base64: the secret itself, to be shown once to
// the partner and kept sealed at rest. It is empty for the zero Secret.
func (s Secret) Reveal() string {
	if s.IsZero() {
		return ""
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(s.key)
}

// redacted is how a Secret prints and logs: its text form is had only by asking (Reveal).
const redacted = SecretPrefix + "[redacted]"

// String keeps the secret out of what prints it (fmt's verbs, a struct that holds it).
func (s Secret) String() string { return redacted }

// GoString keeps the secret out of %#v.
func (s Secret) GoString() string { return redacted }

// LogValue keeps the secret out of structured logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// Key is a copy of the secret's key, the HMAC key of its signatures.
func (s Secret) Key() []byte {
	return append([]byte(nil), s.key...)
}

// IsZero reports whether s is the zero Secret.
func (s Secret) IsZero() bool {
	return len(s.key) == 0
}

// Sign gives the value of the webhook-signature header of a message: for each secret, in order,
// v1, and the base64 of HMAC-SHA256 over id, ".", the timestamp in Unix seconds, ".", and the body;
// separated by one space. It is empty without secrets and panics on the zero Secret, which has no
// key to sign with.
func Sign(id string, timestamp time.Time, body []byte, secrets ...Secret) string {
	signed := make([]byte, 0, len(id)+len(body)+22)
	signed = append(signed, id...)
	signed = append(signed, '.')
	signed = strconv.AppendInt(signed, timestamp.Unix(), 10)
	signed = append(signed, '.')
	signed = append(signed, body...)

	var b strings.Builder
	for i, s := range secrets {
		if s.IsZero() {
			panic("webhook: Sign with the zero Secret")
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		mac := hmac.New(sha256.New, s.key)
		mac.Write(signed)
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return b.String()
}

// Header is one header of a delivery.
type Header struct {
	Name, Value string
}

// Headers gives the three headers of a delivery of body, in the order webhook-id,
// webhook-timestamp, webhook-signature (see Sign).
func Headers(id string, timestamp time.Time, body []byte, secrets ...Secret) []Header {
	return []Header{
		{HeaderID, id},
		{HeaderTimestamp, strconv.FormatInt(timestamp.Unix(), 10)},
		{HeaderSignature, Sign(id, timestamp, body, secrets...)},
	}
}
