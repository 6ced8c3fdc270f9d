// Command probe reports how it was started, so that mgo's tests can check
// that the launcher hands over the process unchanged.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe pid|args|env|exe|fds|level|cat|exit N|signal|comm|executable|reexec|execenv|state|maps|sleep")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "pid":
		fmt.Println(os.Getpid())
	case "args":
		for _, a := range os.Args {
			fmt.Printf("%q\n", a)
		}
	case "env":
		for _, e := range os.Environ() {
			fmt.Println(e)
		}
	case "exe":
		target, err := os.Readlink("/proc/self/exe")
		if err != nil {
			fail(err)
		}
		f, err := os.Open("/proc/self/exe")
		if err != nil {
			fail(err)
		}
		const fGetSeals = 1034
		seals, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), fGetSeals, 0)
		if errno != 0 {
			fail(errno)
		}
		fmt.Printf("%s\nseals=%d\n", target, seals)
	case "fds":
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			fail(err)
		}
		for _, e := range entries {
			target, _ := os.Readlink("/proc/self/fd/" + e.Name())
			fmt.Printf("%s %s\n", e.Name(), target)
		}
	case "level":
		info, ok := debug.ReadBuildInfo()
		if !ok {
			fail(fmt.Errorf("no build info"))
		}
		for _, s := range info.Settings {
			if s.Key == "GOAMD64" {
				fmt.Println(s.Value)
			}
		}
	case "cat":
		if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
			fail(err)
		}
	case "exit":
		code, err := strconv.Atoi(strings.TrimSpace(os.Args[2]))
		if err != nil {
			fail(err)
		}
		os.Exit(code)
	case "comm":
		comm, err := os.ReadFile("/proc/self/comm")
		if err != nil {
			fail(err)
		}
		fmt.Print(string(comm))
	case "executable":
		exe, err := os.Executable()
		if err != nil {
			fail(err)
		}
		fmt.Println(exe)
	case "reexec":
		// A program that starts itself again, as servers do to upgrade in
		// place: through os.Executable().
		exe, err := os.Executable()
		if err != nil {
			fail(err)
		}
		if err := syscall.Exec(exe, []string{os.Args[0], "level"}, os.Environ()); err != nil {
			fail(err)
		}
	case "execenv":
		// execenv PROGRAM VAR=VALUE...: starts PROGRAM with exactly these
		// environment entries, duplicates included (which env(1) and most
		// shells would merge).
		if err := syscall.Exec(os.Args[2], []string{os.Args[2], "level"}, os.Args[3:]); err != nil {
			fail(err)
		}
	case "state":
		// What a program finds of its start: descriptors, signal state,
		// threads. The launcher must leave none of its own.
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			fail(err)
		}
		fmt.Printf("fds %d\n", len(entries)-1) // minus the one ReadDir used
		status, err := os.ReadFile("/proc/self/status")
		if err != nil {
			fail(err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			for _, key := range []string{"SigBlk:", "SigIgn:", "SigCgt:"} {
				if strings.HasPrefix(line, key) {
					fmt.Println(strings.Join(strings.Fields(line), " "))
				}
			}
		}
		// sigaltstack(NULL, &old): the alternate signal stack of this
		// thread (stack_t: ss_sp, ss_flags, ss_size).
		var stack [3]uintptr
		_, _, errno := syscall.Syscall(syscall.SYS_SIGALTSTACK, 0, uintptr(unsafe.Pointer(&stack[0])), 0)
		if errno != 0 {
			fail(errno)
		}
		fmt.Printf("altstack flags=%d size=%d\n", int32(stack[1]), stack[2])
	case "maps":
		maps, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			fail(err)
		}
		fmt.Print(string(maps))
	case "sleep":
		// Says it is running, then stays until stdin closes: for measuring
		// running instances.
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
	case "signal":
		// The Go runtime re-raises SIGTERM with the default action, so the
		// parent sees death by signal, as with any program.
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		select {}
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "probe:", err)
	os.Exit(3)
}
