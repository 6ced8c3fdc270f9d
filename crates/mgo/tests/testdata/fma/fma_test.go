package fma

import "testing"

// TestMulAddRoundsTwice expects the product rounded before the sum, as
// below v3; a fused multiply-add at v3 keeps the exact product's low bits.
func TestMulAddRoundsTwice(t *testing.T) {
	x := 1.0 + 1.0/(1<<30)
	if got, want := MulAdd(x, x, -1), 2.0/(1<<30); got != want {
		t.Fatalf("MulAdd(x, x, -1) = %g, want %g (one rounding: fused)", got, want)
	}
}

func TestPasses(t *testing.T) {}
