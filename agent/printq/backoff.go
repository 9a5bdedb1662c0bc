package printq

import (
	"math/rand/v2"
	"time"
)

// Bounds of the delay between two attempts.
const (
	backoffMin = 2 * time.Second
	backoffMax = 2 * time.Minute
)

// backoff gives the delays between retries: doubling from backoffMin up to
// backoffMax, with jitter (half of each delay is random), never below
// backoffMin.
type backoff struct{ n int }

func (b *backoff) reset() { b.n = 0 }

func (b *backoff) next() time.Duration {
	ceil := backoffMax
	if b.n < 16 {
		ceil = min(backoffMin<<b.n, backoffMax)
	}
	b.n++
	d := ceil/2 + rand.N(ceil/2+1)
	return max(d, backoffMin)
}
