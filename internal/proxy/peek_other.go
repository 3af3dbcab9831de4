//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package proxy

// socketQuiet cannot peek at the socket here: a conn the upstream closed
// is found when it is used, and idempotent requests are retried.
func (pc *pconn) socketQuiet() bool { return true }

func (pc *pconn) peek(uintptr) bool { return true }
