package netutil

import (
	"fmt"
	"net"
)

// IsLoopback reports whether the listen address addr (HOST:PORT) binds only
// to a loopback interface. An empty host or an unspecified address
// (0.0.0.0, ::) binds every interface and is not loopback; "localhost" is.
func IsLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("address %q: want HOST:PORT: %w", addr, err)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		// A host name other than localhost may resolve to anything.
		return false, nil
	}
	return ip.IsLoopback(), nil
}
