package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestHashPassword(t *testing.T) {
	h1, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HashPassword("correct horse battery")
	if !bytes.HasPrefix(h1, []byte("$argon2id$v=19$m=19456,t=2,p=1$")) || bytes.Equal(h1, h2) {
		t.Errorf("hashes %s and %s: want argon2id with parameters and distinct salts", h1, h2)
	}
	if !CheckPassword(h1, "correct horse battery") || !CheckPassword(h2, "correct horse battery") {
		t.Error("the password does not match its hash")
	}
	for _, pw := range []string{"correct horse batterY", "correct horse batter", "", strings.Repeat("x", MaxPasswordLength+1)} {
		if CheckPassword(h1, pw) {
			t.Errorf("%.20q matches", pw)
		}
	}
	for pw, want := range map[string]error{
		"short":                                  ErrPasswordTooShort,
		"éééééééé9":                              ErrPasswordTooShort, // 9 characters, 17 bytes
		"ééééééééé9":                             nil,
		strings.Repeat("x", MaxPasswordLength+1): ErrPasswordTooLong,
		strings.Repeat("x", MaxPasswordLength):   nil,
		"tab\tinside the password":               ErrPasswordInvalid,
		"invalid \xff utf-8 here":                ErrPasswordInvalid,
	} {
		if err := ValidatePassword(pw); !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("ValidatePassword(%.20q) = %v, want %v", pw, err, want)
		}
	}
}

func TestCheckPasswordRefusesBadHashes(t *testing.T) {
	const pw = "correct horse battery"
	good, _ := HashPassword(pw)
	parts := strings.Split(string(good), "$")
	salt, key := parts[4], parts[5]
	for _, h := range []string{
		"",
		"plain text",
		fmt.Sprintf("$argon2i$v=19$m=19456,t=2,p=1$%s$%s", salt, key),
		fmt.Sprintf("$argon2id$v=16$m=19456,t=2,p=1$%s$%s", salt, key),
		fmt.Sprintf("$argon2id$v=19$m=4194304,t=2,p=1$%s$%s", salt, key), // 4 GiB
		fmt.Sprintf("$argon2id$v=19$m=19456,t=1000,p=1$%s$%s", salt, key),
		fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=0$%s$%s", salt, key),
		fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=1,x=1$%s$%s", salt, key),
		fmt.Sprintf("$argon2id$v=19$m=019456,t=2,p=1$%s$%s", salt, key),
		fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=1$%s$", salt),
		fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=1$%s=$%s", salt, key),
		fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=1$%s$%s$", salt, key),
	} {
		if CheckPassword([]byte(h), pw) {
			t.Errorf("%q matches", h)
		}
	}
	// The parameters come from the hash: a hash made with others matches.
	other := argonKey(pw, []byte("0123456789abcdef"), 1, 8*1024, 2, 32)
	h := fmt.Sprintf("$argon2id$v=19$m=8192,t=1,p=2$MDEyMzQ1Njc4OWFiY2RlZg$%s", b64(other))
	if !CheckPassword([]byte(h), pw) {
		t.Errorf("a hash with other parameters does not match: %s", h)
	}
}

func TestLimiterBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(2, time.Minute, 10)
	for i := range 100 {
		l.take(fmt.Sprint(i), now)
		if len(l.failures) > 10 {
			t.Fatalf("%d keys after %d failures", len(l.failures), i+1)
		}
	}
	// Expired keys go first.
	l = newLimiter(2, time.Minute, 3)
	l.take("old", now)
	l.take("a", now.Add(59*time.Second))
	l.take("b", now.Add(59*time.Second))
	l.take("c", now.Add(61*time.Second))
	if _, ok := l.failures["old"]; ok || len(l.failures) != 3 {
		t.Errorf("keys %v", l.failures)
	}
	l.take("c", now.Add(62*time.Second))
	l.take("c", now.Add(63*time.Second))
	if n := len(l.failures["c"]); n != 2 {
		t.Errorf("%d failures kept for c, want the limit 2", n)
	}
	if w := l.take("c", now.Add(63*time.Second)); w != 58*time.Second {
		t.Errorf("wait %v", w)
	}
	// An undone attempt no longer counts.
	l.undo("c", now.Add(62*time.Second))
	if w := l.take("c", now.Add(63*time.Second)); w != 0 {
		t.Errorf("after undo: wait %v", w)
	}
}

func b64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// BenchmarkCheckPassword measures what one login costs the server:
// go test -run XXX -bench CheckPassword -benchmem ./central/auth
func BenchmarkCheckPassword(b *testing.B) {
	h, _ := HashPassword("correct horse battery")
	for b.Loop() {
		CheckPassword(h, "correct horse battery")
	}
}

// The hash checked for unknown users costs as much as a real one.
func TestDummyHash(t *testing.T) {
	a := New(Options{})
	h := a.dummyHash()
	p, ok := parseHash(string(h))
	if !ok || p.time != argonTime || p.memory != argonMemory || p.threads != argonThreads || len(p.key) != argonKeyLen {
		t.Errorf("dummy hash %s: %+v", h, p)
	}
	if CheckPassword(h, "") || CheckPassword(h, "correct horse battery") {
		t.Error("the dummy hash matches")
	}
	if a2 := New(Options{}); bytes.Equal(a2.dummyHash(), h) {
		t.Error("two dummy hashes are equal")
	}
}
