// Command zlibref writes, for each file named on the command line, NAME.zlib:
// the file compressed the way Go's linker compresses a DWARF section
// (compress/zlib at BestSpeed, written in one piece, then closed). The
// goflate tests compare mgo's encoder with it.
package main

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"os"
)

func main() {
	for _, name := range os.Args[1:] {
		input, err := os.ReadFile(name)
		if err != nil {
			fail(err)
		}
		var out bytes.Buffer
		w, err := zlib.NewWriterLevel(&out, zlib.BestSpeed)
		if err != nil {
			fail(err)
		}
		// Go's output does not depend on how the input is split into
		// writes; write it in uneven pieces anyway, as the linker does
		// (one write per symbol).
		for len(input) > 0 {
			n := min(len(input), 1+len(input)%7919)
			if _, err := w.Write(input[:n]); err != nil {
				fail(err)
			}
			input = input[n:]
		}
		if err := w.Close(); err != nil {
			fail(err)
		}
		if err := os.WriteFile(name+".zlib", out.Bytes(), 0o644); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "zlibref:", err)
	os.Exit(1)
}
