// tcp_echo — the Go peer server for ember_io_bench's TCP request/response
// benchmark: a goroutine per connection, each reading exact 64-byte
// requests and writing every one back.
//
//	CORES=N tcp_echo [PORT = 0]
//
// Listens on 127.0.0.1:PORT (0: any free port), prints "port=<n>" on stdout,
// and serves until stdin is closed or it gets SIGTERM/SIGINT.  GOMAXPROCS is
// $CORES when set.  Standard library only.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
)

const requestBytes = 64

func serve(c net.Conn) {
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	var buf [requestBytes]byte
	for {
		if _, err := io.ReadFull(c, buf[:]); err != nil {
			return
		}
		if _, err := c.Write(buf[:]); err != nil {
			return
		}
	}
}

func main() {
	if s := os.Getenv("CORES"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			runtime.GOMAXPROCS(n)
		}
	}
	port := "0"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcp_echo:", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "port=%d\n", ln.Addr().(*net.TCPAddr).Port)
	out.Flush()

	stop := make(chan struct{}, 2)
	go func() { // stdin closed (or unreadable): stop
		io.Copy(io.Discard, os.Stdin)
		stop <- struct{}{}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		stop <- struct{}{}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	<-stop
	ln.Close()
}
