package broker

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/ingest"
	"github.com/relais-fr/relais/central/store"
)

// Username returns the MQTT username of an agent: "{site}/{agent}". The
// slash cannot occur in an id, so the name maps back to one agent, and a
// Mosquitto ACL pattern relais/v1/%u/... expands to the agent's own topics.
func Username(site, agent string) string { return site + "/" + agent }

// ParseUsername returns the agent an MQTT username names.
func ParseUsername(u string) (ingest.Identity, bool) {
	site, agent, ok := strings.Cut(u, "/")
	if !ok || !api.ValidID(site) || !api.ValidID(agent) {
		return ingest.Identity{}, false
	}
	return ingest.Identity{Site: site, Agent: agent}, true
}

// Defaults of the verification cache.
const (
	DefaultAuthCacheTTL  = 10 * time.Minute
	DefaultAuthCacheSize = 1 << 16
)

var errBusy = errors.New("too many password checks waiting")

// authenticator checks agents' passwords against the store. argon2id is
// slow on purpose, so a successful check is remembered for ttl (keyed by
// username, valid only for the same stored hash and the same password, as
// an HMAC under a key of this process) and at most `checks` run at once:
// agents reconnecting all together after an outage, or a flood of wrong
// passwords, cost a bounded share of the CPU.
type authenticator struct {
	st     store.Store
	now    func() time.Time
	ttl    time.Duration
	size   int
	key    [32]byte
	checks chan struct{}
	wait   time.Duration // for a slot in checks

	mu    sync.Mutex
	cache map[string]cacheEntry // guarded by mu
}

type cacheEntry struct {
	hash    []byte   // the stored hash it was checked against
	mac     [32]byte // HMAC-SHA256 of the password
	expires time.Time
}

func newAuthenticator(st store.Store, now func() time.Time, ttl time.Duration, size, checks int) *authenticator {
	a := &authenticator{
		st: st, now: now, ttl: ttl, size: size,
		checks: make(chan struct{}, checks),
		wait:   10 * time.Second,
		cache:  map[string]cacheEntry{},
	}
	rand.Read(a.key[:])
	return a
}

func (a *authenticator) mac(password []byte) [32]byte {
	h := hmac.New(sha256.New, a.key[:])
	h.Write(password)
	var m [32]byte
	h.Sum(m[:0])
	return m
}

// check authenticates an agent by its password. The error says why not,
// for the log (never for the client).
func (a *authenticator) check(ctx context.Context, id ingest.Identity, password []byte) error {
	if len(password) == 0 || len(password) > MaxSecretBytes {
		return ErrWrongSecret
	}
	ctx, cancel := context.WithTimeout(ctx, a.wait)
	defer cancel()
	ag, err := a.st.Agent(ctx, id.Site, id.Agent)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no agent %s is registered (relais-central agent add)", id)
	}
	if err != nil {
		return fmt.Errorf("reading the agent: %w", err)
	}
	user := id.String()
	mac := a.mac(password)
	now := a.now()
	a.mu.Lock()
	e, ok := a.cache[user]
	a.mu.Unlock()
	if ok && now.Before(e.expires) && bytes.Equal(e.hash, ag.SecretHash) && hmac.Equal(e.mac[:], mac[:]) {
		return nil
	}

	select {
	case a.checks <- struct{}{}:
	case <-ctx.Done():
		return errBusy
	}
	err = CheckSecret(ag.SecretHash, string(password))
	<-a.checks
	if err != nil {
		return err
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= a.size {
		for u, e := range a.cache {
			if !now.Before(e.expires) {
				delete(a.cache, u)
			}
		}
		for u := range a.cache { // still full: forget arbitrary ones
			if len(a.cache) < a.size {
				break
			}
			delete(a.cache, u)
		}
	}
	a.cache[user] = cacheEntry{hash: bytes.Clone(ag.SecretHash), mac: mac, expires: now.Add(a.ttl)}
	return nil
}
