package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password length bounds, in bytes of UTF-8. Shorter passwords are refused
// by HashPassword; longer ones by HashPassword and by Login, so that no
// request can make the server hash megabytes.
const (
	MinPasswordLength = 10
	MaxPasswordLength = 1024
)

// Errors of HashPassword.
var (
	ErrPasswordTooShort = fmt.Errorf("auth: password shorter than %d characters", MinPasswordLength)
	ErrPasswordTooLong  = fmt.Errorf("auth: password longer than %d bytes", MaxPasswordLength)
	ErrPasswordInvalid  = errors.New("auth: password is not valid UTF-8 or holds control characters")
)

// The argon2id parameters of new hashes: the OWASP Password Storage Cheat
// Sheet's first recommended configuration (19 MiB of memory, 2 passes, 1
// lane), a 16-byte random salt and a 32-byte key. A check costs 44 ms and
// 19 MiB on one core of a 2-core Xeon VM (BenchmarkCheckPassword);
// hashSlots bounds how many run at once, and Login's rate limit bounds how
// often an attacker can ask for one.
// The parameters are stored in each hash (PHC string format), so they can
// be raised later without invalidating existing hashes.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
)

// Bounds on the parameters CheckPassword accepts from a stored hash, so that
// a corrupted or hostile row cannot make a login allocate gigabytes.
const (
	maxArgonTime    = 10
	maxArgonMemory  = 256 * 1024 // KiB
	maxArgonThreads = 16
)

// hashSlots bounds the argon2 computations running at once (each holds
// argonMemory KiB).
var hashSlots = make(chan struct{}, 4)

// HashPassword returns the argon2id hash of pw in the PHC string format
// ($argon2id$v=19$m=19456,t=2,p=1$SALT$KEY, base64 without padding). It
// refuses passwords shorter than MinPasswordLength characters, longer than
// MaxPasswordLength bytes, or holding invalid UTF-8 or control characters.
func HashPassword(pw string) ([]byte, error) {
	if err := ValidatePassword(pw); err != nil {
		return nil, err
	}
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	key := argonKey(pw, salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return encodeHash(salt, key), nil
}

// encodeHash returns the PHC string of a key made with the current
// parameters.
func encodeHash(salt, key []byte) []byte {
	b64 := base64.RawStdEncoding
	return fmt.Appendf(nil, "$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// ValidatePassword checks what HashPassword requires of a new password:
// MinPasswordLength characters or more, MaxPasswordLength bytes or fewer,
// valid UTF-8 without control characters. Its errors are
// ErrPasswordTooShort, ErrPasswordTooLong and ErrPasswordInvalid.
func ValidatePassword(pw string) error {
	if len(pw) > MaxPasswordLength {
		return ErrPasswordTooLong
	}
	if !utf8.ValidString(pw) || strings.ContainsFunc(pw, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return ErrPasswordInvalid
	}
	if utf8.RuneCountInString(pw) < MinPasswordLength {
		return ErrPasswordTooShort
	}
	return nil
}

// CheckPassword reports whether pw matches hash, a hash returned by
// HashPassword. The keys are compared in constant time. A malformed hash, or
// one whose parameters exceed sane bounds, matches nothing.
func CheckPassword(hash []byte, pw string) bool {
	if len(pw) > MaxPasswordLength {
		return false
	}
	p, ok := parseHash(string(hash))
	if !ok {
		return false
	}
	key := argonKey(pw, p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1
}

func argonKey(pw string, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	return argon2.IDKey([]byte(pw), salt, time, memory, threads, keyLen)
}

type argonParams struct {
	time, memory uint32
	threads      uint8
	salt, key    []byte
}

func parseHash(s string) (argonParams, bool) {
	var p argonParams
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" || f[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, false
	}
	var m, t, threads uint32
	if n, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &m, &t, &threads); n != 3 || err != nil ||
		fmt.Sprintf("m=%d,t=%d,p=%d", m, t, threads) != f[3] {
		return p, false
	}
	if t < 1 || t > maxArgonTime || threads < 1 || threads > maxArgonThreads ||
		m < 8*threads || m > maxArgonMemory {
		return p, false
	}
	b64 := base64.RawStdEncoding.Strict()
	salt, err1 := b64.DecodeString(f[4])
	key, err2 := b64.DecodeString(f[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(salt) > 64 || len(key) < 16 || len(key) > 64 {
		return p, false
	}
	return argonParams{time: t, memory: m, threads: uint8(threads), salt: salt, key: key}, true
}
