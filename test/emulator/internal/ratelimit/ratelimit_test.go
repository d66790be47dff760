package ratelimit

import (
	"testing"
	"time"
)

func TestABucketSpendsItsBurstThenRefillsAtItsRate(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	b := NewBucket(Limit{Burst: 3, PerSecond: 2}, t0)
	for i, want := range []int{2, 1, 0} {
		d := b.Take(t0)
		if !d.Allowed || d.Remaining != want || d.Limit != 3 {
			t.Fatalf("take %d: %+v, want allowed with %d remaining", i, d, want)
		}
	}
	d := b.Take(t0)
	if d.Allowed || d.RetryAfter != 500*time.Millisecond {
		t.Fatalf("over the burst: %+v, want refused, retry after 500ms", d)
	}
	if want := t0.Add(1500 * time.Millisecond); !d.Reset.Equal(want) {
		t.Fatalf("reset %v, want %v (full again after 3 tokens at 2/s)", d.Reset, want)
	}
	if d := b.Take(t0.Add(499 * time.Millisecond)); d.Allowed {
		t.Fatalf("1ns before a token is back: %+v", d)
	}
	if d := b.Take(t0.Add(500 * time.Millisecond)); !d.Allowed {
		t.Fatalf("a token is back after 500ms: %+v", d)
	}
	if d := b.Take(t0.Add(time.Hour)); !d.Allowed || d.Remaining != 2 {
		t.Fatalf("a bucket never holds more than its burst: %+v", d)
	}
}

func TestAZeroLimitRefusesNothing(t *testing.T) {
	b := NewBucket(Limit{}, time.Now())
	for i := 0; i < 1000; i++ {
		if !b.Take(time.Now()).Allowed {
			t.Fatal("refused with limits off")
		}
	}
}

func TestKeyedBucketsAreSeparateAndForgottenOnceFull(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	k := NewKeyed(Limit{Burst: 2, PerSecond: 1.0 / 60})
	for i := 0; i < 2; i++ {
		if !k.Take("10.0.0.1|a@example.com", t0).Allowed {
			t.Fatalf("take %d refused", i)
		}
	}
	if d := k.Take("10.0.0.1|a@example.com", t0); d.Allowed || d.RetryAfter != time.Minute {
		t.Fatalf("third take: %+v, want refused for a minute", d)
	}
	if !k.Take("10.0.0.1|b@example.com", t0).Allowed || !k.Take("10.0.0.2|a@example.com", t0).Allowed {
		t.Fatal("another key has its own bucket")
	}
	// After two minutes every bucket is full again; the next sweep drops them.
	later := t0.Add(2 * time.Minute)
	for i := 0; i < sweepEvery; i++ {
		k.Take("late", later)
	}
	if n := k.Len(); n != 1 {
		t.Fatalf("%d buckets kept, want only the one in use", n)
	}
}
