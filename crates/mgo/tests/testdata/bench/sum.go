package bench

// Sum adds the words up: the same code at every level.
func Sum(words []uint64) uint64 {
	var s uint64
	for _, w := range words {
		s += w
	}
	return s
}
