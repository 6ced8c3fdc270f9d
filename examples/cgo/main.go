// Command cgo calls into C, so that the bundle carries cgo variants linked
// by the system's C toolchain.
package main

/*
#include <stdint.h>

static uint64_t fib(int n) {
	uint64_t a = 0, b = 1;
	for (int i = 0; i < n; i++) {
		uint64_t t = a + b;
		a = b;
		b = t;
	}
	return a;
}
*/
import "C"

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	n := 90
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v < 0 || v > 93 {
			fmt.Fprintln(os.Stderr, "usage: cgo [n <= 93]")
			os.Exit(2)
		}
		n = v
	}
	fmt.Printf("fib(%d) = %d (from C)\n", n, uint64(C.fib(C.int(n))))
}
