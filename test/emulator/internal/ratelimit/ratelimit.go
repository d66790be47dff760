// Package ratelimit is a token bucket that also reports the numbers behind
// the platform's X-RateLimit-* headers.
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// Limit configures a bucket: Burst requests at once, refilled at PerSecond.
// The zero Limit means "off": nothing is refused.
type Limit struct {
	Burst     int     `json:"burst"`
	PerSecond float64 `json:"per_second"`
}

// Off reports whether the limit enforces nothing.
func (l Limit) Off() bool { return l.Burst <= 0 || l.PerSecond <= 0 }

// Decision is the outcome of one Take, with the values for the headers.
type Decision struct {
	Allowed   bool
	Limit     int
	Remaining int
	// Reset is when the bucket is full again (X-RateLimit-Reset).
	Reset time.Time
	// RetryAfter is how long until one token is back, for a refused request.
	RetryAfter time.Duration
}

// Bucket is safe for concurrent use.
type Bucket struct {
	mu     sync.Mutex
	limit  Limit
	tokens float64
	last   time.Time
}

// NewBucket returns a full bucket.
func NewBucket(l Limit, now time.Time) *Bucket {
	return &Bucket{limit: l, tokens: float64(l.Burst), last: now}
}

// SetLimit changes the configuration; the bucket starts full so that a test
// that changes limits starts from a known state.
func (b *Bucket) SetLimit(l Limit, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.limit, b.tokens, b.last = l, float64(l.Burst), now
}

// Take spends one token if there is one.
func (b *Bucket) Take(now time.Time) Decision {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.limit
	if l.Off() {
		// Headers stay truthful: nothing is ever refused, so a client pacing
		// itself sees an allowance it cannot exhaust.
		return Decision{Allowed: true, Limit: math.MaxInt32, Remaining: math.MaxInt32, Reset: now}
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(float64(l.Burst), b.tokens+el*l.PerSecond)
	}
	b.last = now
	d := Decision{Limit: l.Burst}
	if b.tokens >= 1 {
		b.tokens--
		d.Allowed = true
	} else {
		d.RetryAfter = time.Duration((1 - b.tokens) / l.PerSecond * float64(time.Second))
	}
	d.Remaining = int(math.Floor(b.tokens))
	missing := float64(l.Burst) - b.tokens
	d.Reset = now.Add(time.Duration(missing / l.PerSecond * float64(time.Second)))
	return d
}

// Keyed is one bucket per key (an IP address, a user id, an IP and an
// email), all with the same limit, for limits the platform keeps per
// caller. Idle buckets that have refilled are forgotten, so memory follows
// the number of recent callers.
type Keyed struct {
	mu      sync.Mutex
	limit   Limit
	buckets map[string]*Bucket
	takes   int
}

// NewKeyed returns a Keyed with no bucket yet.
func NewKeyed(l Limit) *Keyed { return &Keyed{limit: l, buckets: map[string]*Bucket{}} }

// sweepEvery is how many takes pass between two sweeps of full buckets.
const sweepEvery = 1024

// Take spends one token of key's bucket (a full one for a new key).
func (k *Keyed) Take(key string, now time.Time) Decision {
	k.mu.Lock()
	if k.takes++; k.takes%sweepEvery == 0 {
		for key, b := range k.buckets {
			if b.full(now) {
				delete(k.buckets, key)
			}
		}
	}
	b := k.buckets[key]
	if b == nil {
		b = NewBucket(k.limit, now)
		k.buckets[key] = b
	}
	k.mu.Unlock()
	return b.Take(now)
}

// Len is how many callers have a bucket (for tests).
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}

// full reports whether the bucket would be full at now: it then behaves
// exactly like a new one.
func (b *Bucket) full(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.limit.Off() {
		return true
	}
	return b.tokens+now.Sub(b.last).Seconds()*b.limit.PerSecond >= float64(b.limit.Burst)
}
