//go:build amd64.v2

package bench

import "math/bits"

// Count is the number of set bits in words: from v2 on, one POPCNT
// instruction per word.
func Count(words []uint64) int {
	n := 0
	for _, w := range words {
		n += bits.OnesCount64(w)
	}
	return n
}
