package bench

import (
	"os"
	"testing"
)

var words = func() []uint64 {
	w := make([]uint64, 4096)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range w {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		w[i] = x
	}
	return w
}()

var sink int

func TestCount(t *testing.T) {
	if got := Count([]uint64{0, 1, 3, 1 << 63, ^uint64(0)}); got != 68 {
		t.Fatalf("Count = %d, want 68", got)
	}
}

// BenchmarkCount differs between levels: v2 counts with POPCNT.
func BenchmarkCount(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sink += Count(words)
	}
}

// BenchmarkSum is the same code at every level.
func BenchmarkSum(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sink += int(Sum(words))
	}
}

// TestLevel logs the level the binary runs, as GOAMD64 tells it.
func TestLevel(t *testing.T) {
	t.Logf("GOAMD64=%s", os.Getenv("GOAMD64"))
}
