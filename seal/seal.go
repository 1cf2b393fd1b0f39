// Package seal encrypts values kept at rest (customers' bank details, the token signing keys)
// with AES-256-GCM under a key ring the operator provides: the first key of the ring seals, every
// key of the ring opens. A sealed value is text that names its key,
//
//	v1.<key id>.<base64url(nonce | ciphertext and tag)>
//
// so that values sealed under an earlier key are still read once a new key seals, until rotation
// seals them again under the new one. A value without that form is a plaintext written before
// sealing existed: it is read as it is, and rotation seals it.
//
// A value kept only to be matched (a customer's email address, counted against the cap of emails
// to one address; the browser a signup was confirmed from) is kept as its keyed digest instead
// (MAC), under a key derived from the current key.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

// version is the prefix of every sealed value; another format would take another.
const version = "v1"

const nonceSize = 12 // the standard GCM nonce

// minSealed is the shortest payload a sealed value can have: a nonce and the tag of an empty
// plaintext.
const minSealed = nonceSize + 16

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// ErrNoKey is the error of sealing, or opening a sealed value, without a key ring.
var ErrNoKey = errors.New("no encryption key is configured")

// Keyring holds the keys by id; the first seals. The nil Keyring has no key: it seals nothing and
// opens only plaintext.
type Keyring struct {
	ids   []string // in the order given; ids[0] seals
	aeads map[string]cipher.AEAD
	keys  map[string][]byte // the keys themselves, from which MAC derives its own
}

// Parse reads a key ring: entries id:base64key separated by commas or newlines, the first being
// the key that seals. An id is 1 to 32 of A-Z, a-z, 0-9, hyphen and underscore; a key is 32 bytes
// in base64 (standard or URL alphabet, padded or not). Errors never show key material.
func Parse(ring string) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}, keys: map[string][]byte{}}
	entries := strings.FieldsFunc(ring, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
	for i, entry := range entries {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, encoded, ok := strings.Cut(entry, ":")
		id, encoded = strings.TrimSpace(id), strings.TrimSpace(encoded)
		if !ok {
			return nil, fmt.Errorf("key ring entry %d is not id:base64key", i+1)
		}
		if !idPattern.MatchString(id) {
			return nil, fmt.Errorf("key ring entry %d: key id %q is not 1 to 32 of A-Z, a-z, 0-9, - and _", i+1, id)
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("key ring entry %d: key id %q appears twice", i+1, id)
		}
		key, err := decodeKey(encoded)
		if err != nil {
			return nil, fmt.Errorf("key ring entry %d (key id %q): %w", i+1, id, err)
		}
		aead, err := newAEAD(key)
		if err != nil {
			return nil, err
		}
		k.ids = append(k.ids, id)
		k.aeads[id] = aead
		k.keys[id] = key
	}
	if len(k.ids) == 0 {
		return nil, errors.New("the key ring is empty: want id:base64key[,id:base64key…]")
	}
	return k, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) != KeySize {
				return nil, fmt.Errorf("the key is %d bytes; want %d (AES-256)", len(key), KeySize)
			}
			return key, nil
		}
	}
	return nil, errors.New("the key is not base64")
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Generate returns a key ring entry id:base64key of a new random key.
func Generate(id string) (string, error) {
	if !idPattern.MatchString(id) {
		return "", fmt.Errorf("key id %q is not 1 to 32 of A-Z, a-z, 0-9, - and _", id)
	}
	key := make([]byte, KeySize)
	rand.Read(key)
	return id + ":" + base64.StdEncoding.EncodeToString(key), nil
}

// Current is the id of the key that seals; empty for the nil Keyring.
func (k *Keyring) Current() string {
	if k == nil {
		return ""
	}
	return k.ids[0]
}

// IDs are the ids of the ring's keys, the current first.
func (k *Keyring) IDs() []string {
	if k == nil {
		return nil
	}
	return slices.Clone(k.ids)
}

// Seal encrypts plaintext with the current key. aad names what the value is (its table and
// column), so that a value moved to another place does not open there.
func (k *Keyring) Seal(aad string, plaintext []byte) (string, error) {
	if k == nil {
		return "", ErrNoKey
	}
	id := k.ids[0]
	aead := k.aeads[id]
	nonce := make([]byte, nonceSize, nonceSize+len(plaintext)+aead.Overhead())
	rand.Read(nonce)
	sealed := aead.Seal(nonce, nonce, plaintext, []byte(aad))
	return version + "." + id + "." + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// Open returns the plaintext of a value Seal made with any key of the ring, or the value itself
// when it is not sealed (a plaintext written before sealing existed).
func (k *Keyring) Open(aad, value string) ([]byte, error) {
	id, payload, sealed := parse(value)
	if !sealed {
		return []byte(value), nil
	}
	if k == nil {
		return nil, fmt.Errorf("open a value sealed with key %q: %w", id, ErrNoKey)
	}
	aead, ok := k.aeads[id]
	if !ok {
		return nil, fmt.Errorf("open a value sealed with key %q: the key ring (%s) does not have that key", id, strings.Join(k.ids, ", "))
	}
	plaintext, err := aead.Open(nil, payload[:nonceSize], payload[nonceSize:], []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("open a value sealed with key %q as %s: the key ring's %q is not the key it was sealed with (check PYNG_ENCRYPTION_KEY), or the value was altered, or sealed as another value", id, aad, id)
	}
	return plaintext, nil
}

// SealString is Seal of a string, except that the empty string stays empty: there is nothing to
// hide in it, and an erased value reads as erased.
func (k *Keyring) SealString(aad, plaintext string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	return k.Seal(aad, []byte(plaintext))
}

// OpenString is Open of a string.
func (k *Keyring) OpenString(aad, value string) (string, error) {
	if value == "" {
		return "", nil
	}
	b, err := k.Open(aad, value)
	return string(b), err
}

// Stale reports whether value should be sealed again: it is a plaintext, or sealed with a key
// other than the current one. The empty string is never stale.
func (k *Keyring) Stale(value string) bool {
	if value == "" {
		return false
	}
	id, _, sealed := parse(value)
	return !sealed || id != k.Current()
}

// Reseal returns value opened with the ring and sealed with the current key.
func (k *Keyring) Reseal(aad, value string) (string, error) {
	plaintext, err := k.OpenString(aad, value)
	if err != nil {
		return "", err
	}
	return k.SealString(aad, plaintext)
}

// MAC returns the HMAC-SHA256 of data under a key derived from the current key for purpose (by
// HKDF-SHA256, purpose its info; name what is digested, as a table and column): a digest that
// names a value, so that equal values can be found, without holding it or letting it be guessed
// by whoever reads the digest without the key. Another purpose gives unrelated digests, and so
// does another current key: after a rotation the digests made before no longer match.
func (k *Keyring) MAC(purpose string, data []byte) ([]byte, error) {
	if k == nil {
		return nil, ErrNoKey
	}
	derived, err := hkdf.Key(sha256.New, k.keys[k.ids[0]], nil, "pyng mac: "+purpose, sha256.Size)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, derived)
	mac.Write(data)
	return mac.Sum(nil), nil
}

// parse splits a sealed value into its key id and payload; sealed is false when value does not
// have the form of one (a plaintext).
func parse(value string) (id string, payload []byte, sealed bool) {
	rest, ok := strings.CutPrefix(value, version+".")
	if !ok {
		return "", nil, false
	}
	id, encoded, ok := strings.Cut(rest, ".")
	if !ok || !idPattern.MatchString(id) {
		return "", nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(encoded)
	if err != nil || len(payload) < minSealed {
		return "", nil, false
	}
	return id, payload, true
}

// ReadFile reads the key ring kept in the file at path (Parse's format).
func ReadFile(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// CreateFile writes a key ring of one new key, with the given id, to a new file at path that only
// its owner may read (0600, as os.CreateTemp makes it), and returns it. It fails with an error satisfying
// errors.Is(err, fs.ErrExist) if the file exists: of two processes starting together, one writes
// the key and the other reads it. The file appears whole: it is written aside, then linked.
func CreateFile(path, id string) (*Keyring, error) {
	entry, err := Generate(id)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(entry + "\n")
	if err := errors.Join(err, f.Sync(), f.Close()); err != nil {
		return nil, err
	}
	if err := os.Link(f.Name(), path); err != nil {
		return nil, err
	}
	return Parse(entry)
}
