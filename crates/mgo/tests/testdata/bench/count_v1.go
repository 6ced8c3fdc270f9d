//go:build !amd64.v2

package bench

// Count is the number of set bits in words: below v2, without POPCNT,
// one bit at a time, so that v2 is several times faster by construction.
func Count(words []uint64) int {
	n := 0
	for _, w := range words {
		for ; w != 0; w >>= 1 {
			n += int(w & 1)
		}
	}
	return n
}
