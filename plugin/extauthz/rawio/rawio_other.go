//go:build !linux

package rawio

import "net"

// Listener is l itself where rawio_linux.go is not built.
func Listener(l net.Listener) net.Listener { return l }

// Conn is c itself where rawio_linux.go is not built.
func Conn(c net.Conn) net.Conn { return c }

// Wrapped is false where rawio_linux.go is not built: no listener wraps.
func Wrapped(net.Listener) bool { return false }
