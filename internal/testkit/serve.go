package testkit

import (
	"net"
	"sync"
	"testing"
)

// Serve accepts connections on ln until the test ends, handing each to
// handle on a goroutine of its own. At cleanup it closes ln and waits for
// every handle to return: a cleanup registered after Serve runs first, so
// that is the place to end what handle blocks on (close a server, a
// channel).
func Serve(tb testing.TB, ln net.Listener, handle func(net.Conn)) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1) // the accept loop is still counted: Add cannot race Wait
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
}
