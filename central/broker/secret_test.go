package broker

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/ingest"
)

func TestSecrets(t *testing.T) {
	pw, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	pw2, _ := NewSecret()
	if len(pw) != 32 || pw == pw2 || strings.ContainsAny(pw, "+/=\n'\"") {
		t.Errorf("NewSecret: %q and %q", pw, pw2)
	}
	h, err := HashSecret(pw)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HashSecret(pw)
	if bytes.Equal(h, h2) || !bytes.HasPrefix(h, []byte("$argon2id$v=19$m=1024,t=1,p=1$")) {
		t.Errorf("hashes %s and %s: want salted argon2id", h, h2)
	}
	if bytes.Contains(h, []byte(pw)) {
		t.Error("the hash holds the password")
	}
	if err := CheckSecret(h, pw); err != nil {
		t.Errorf("right password: %v", err)
	}
	for _, wrong := range []string{pw2, "", pw + "x", pw[:31], strings.Repeat("a", MaxSecretBytes+1)} {
		if err := CheckSecret(h, wrong); !errors.Is(err, ErrWrongSecret) {
			t.Errorf("wrong password %q: %v", wrong, err)
		}
	}
	for _, pw := range []string{"", strings.Repeat("a", MaxSecretBytes+1)} {
		if _, err := HashSecret(pw); err == nil {
			t.Errorf("HashSecret of %d bytes", len(pw))
		}
	}
	bad := []string{
		"",
		"$2a$10$abcdefghijklmnopqrstuv", // bcrypt
		"$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$a", // argon2i
		"$argon2id$v=18$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA", // 4 GiB
		"$argon2id$v=19$m=19456,t=1000,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=0$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$YQ",
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0",
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA$extra",
	}
	for _, b := range bad {
		if err := CheckSecret([]byte(b), pw); !errors.Is(err, ErrBadHash) {
			t.Errorf("hash %q: %v, want ErrBadHash", b, err)
		}
	}
}

func TestUsername(t *testing.T) {
	id, ok := ParseUsername(Username("mairie-exemple", "accueil"))
	if !ok || id != (ingest.Identity{Site: "mairie-exemple", Agent: "accueil"}) {
		t.Errorf("round trip: %+v %v", id, ok)
	}
	for _, u := range []string{"", "mairie", "mairie/", "/accueil", "a/b/c", "Mairie/accueil", "a/b c", "a/+", "a/#", "a/" + strings.Repeat("x", 64)} {
		if _, ok := ParseUsername(u); ok {
			t.Errorf("ParseUsername(%q) accepted", u)
		}
	}
}

// fakeNow is a settable clock.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeNow) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeNow) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestAuthCache: a verified password is remembered for its TTL, for the
// same stored hash and password only, and the cache stays within its
// size.
func TestAuthCache(t *testing.T) {
	st := openStore(t)
	clk := &fakeNow{t: time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)}
	a := newAuthenticator(st, clk.now, time.Minute, 2, 1)
	ctx := context.Background()
	ids := []ingest.Identity{{Site: site, Agent: "pi-1"}, {Site: site, Agent: "pi-2"}, {Site: site, Agent: "pi-3"}}
	pws := make([]string, len(ids))
	for i, id := range ids {
		pws[i] = addAgent(t, st, id.Site, id.Agent)
	}
	if err := a.check(ctx, ids[0], []byte(pws[0])); err != nil {
		t.Fatal(err)
	}
	e, ok := a.cache[ids[0].String()]
	if !ok || !e.expires.Equal(clk.now().Add(time.Minute)) {
		t.Fatalf("not cached: %+v", e)
	}
	// Another password never passes through the cache.
	if err := a.check(ctx, ids[0], []byte(pws[1])); !errors.Is(err, ErrWrongSecret) {
		t.Errorf("wrong password with a cached entry: %v", err)
	}
	if err := a.check(ctx, ids[2], []byte(pws[0])); !errors.Is(err, ErrWrongSecret) {
		t.Errorf("pi-1's password for pi-3: %v", err)
	}
	// Expired entries are checked again and renewed.
	clk.advance(2 * time.Minute)
	if err := a.check(ctx, ids[0], []byte(pws[0])); err != nil {
		t.Fatal(err)
	}
	if e := a.cache[ids[0].String()]; !e.expires.Equal(clk.now().Add(time.Minute)) {
		t.Errorf("entry not renewed: %+v", e)
	}
	// Bounded: three agents, two entries.
	for i, id := range ids {
		if err := a.check(ctx, id, []byte(pws[i])); err != nil {
			t.Fatal(err)
		}
	}
	if len(a.cache) > 2 {
		t.Errorf("%d entries, bound 2", len(a.cache))
	}
	if err := a.check(ctx, ingest.Identity{Site: site, Agent: "pi-9"}, []byte(pws[0])); err == nil {
		t.Error("an unknown agent passed")
	}
}
