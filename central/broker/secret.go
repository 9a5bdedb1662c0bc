package broker

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Parameters of the argon2id hashes made by HashSecret. Agent passwords
// are not chosen by people: NewSecret draws 192 random bits, which no
// guessing can reach whatever the hash costs, so the hash only has to be
// one-way, not slow. A cheap hash (1 MiB, one pass: about a millisecond)
// lets 10,000 agents log in again after a restart of central in seconds
// rather than minutes of CPU; the OWASP parameters (19 MiB, two passes)
// stay for people's passwords (central/auth). Stored hashes carry their
// parameters, so older ones still verify.
const (
	argonMemoryKiB = 1024
	argonTime      = 1
	argonThreads   = 1
	argonSaltLen   = 16
	argonKeyLen    = 32
)

// Bounds on what CheckSecret accepts from a stored hash, so that a
// corrupted row cannot make one check take minutes or gigabytes.
const (
	maxArgonMemoryKiB = 256 * 1024
	maxArgonTime      = 16
	maxArgonThreads   = 16
)

// MaxSecretBytes bounds an agent password.
const MaxSecretBytes = 256

var (
	// ErrWrongSecret: the password does not match the hash.
	ErrWrongSecret = errors.New("broker: wrong password")
	// ErrBadHash: the stored hash is not one HashSecret makes.
	ErrBadHash = errors.New("broker: unrecognised password hash")
)

// NewSecret returns a new random agent password: 24 bytes from
// crypto/rand, 192 bits, written as 32 characters of unpadded base64url,
// so that it fits a password file and a shell command without quoting.
func NewSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashSecret returns the argon2id hash of an agent password, in the PHC
// string format ($argon2id$v=19$m=19456,t=2,p=1$salt$hash), for
// store.Agent.SecretHash.
func HashSecret(password string) ([]byte, error) {
	if password == "" || len(password) > MaxSecretBytes {
		return nil, fmt.Errorf("broker: a password has 1 to %d bytes", MaxSecretBytes)
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Appendf(nil, "$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemoryKiB, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckSecret reports whether password matches a hash made by HashSecret:
// nil, ErrWrongSecret, or ErrBadHash (wrapped) for a hash it cannot read.
// It takes the time and memory of one argon2id hash; the comparison is in
// constant time.
func CheckSecret(hash []byte, password string) error {
	p, err := parseHash(hash)
	if err != nil {
		return err
	}
	if password == "" || len(password) > MaxSecretBytes {
		return ErrWrongSecret
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	if subtle.ConstantTimeCompare(key, p.key) != 1 {
		return ErrWrongSecret
	}
	return nil
}

type argonParams struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

func parseHash(hash []byte) (argonParams, error) {
	var p argonParams
	bad := func(why string) (argonParams, error) {
		return p, fmt.Errorf("%w: %s", ErrBadHash, why)
	}
	if len(hash) > 512 || !bytes.HasPrefix(hash, []byte("$argon2id$")) {
		return bad("not an argon2id hash")
	}
	parts := strings.Split(string(hash), "$")
	if len(parts) != 6 {
		return bad("wants 5 fields")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return bad("unsupported version")
	}
	var threads uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &threads); err != nil || n != 3 {
		return bad("bad parameters")
	}
	if p.memory < 8 || p.memory > maxArgonMemoryKiB || p.time < 1 || p.time > maxArgonTime || threads < 1 || threads > maxArgonThreads {
		return bad("parameters out of bounds")
	}
	p.threads = uint8(threads)
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(p.salt) < 8 {
		return bad("bad salt")
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.key) < 16 || len(p.key) > 64 {
		return bad("bad key")
	}
	return p, nil
}
