//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package proxy

import "syscall"

// socketQuiet reports whether the upstream has neither sent bytes nor
// closed the connection: a non-blocking MSG_PEEK finds nothing to read.
func (pc *pconn) socketQuiet() bool {
	if pc.rc == nil {
		return true
	}
	pc.peekN, pc.peekErr = 0, nil
	if err := pc.rc.Read(pc.peekFn); err != nil {
		return false
	}
	return pc.peekErr == syscall.EAGAIN || pc.peekErr == syscall.EWOULDBLOCK
}

// peek is the RawConn.Read callback of socketQuiet; it never waits.
func (pc *pconn) peek(fd uintptr) bool {
	for {
		n, _, err := syscall.Recvfrom(int(fd), pc.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EINTR {
			continue
		}
		pc.peekN, pc.peekErr = n, err
		return true
	}
}
