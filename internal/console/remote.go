package console

// Logins from beyond this machine: a user's password, checked at the
// user's home server, for an agent's console (its user) or a server's (an
// admin of the domain).

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"time"
)

// PasswordChecker checks a user's password at the user's home server
// (*peer.Node: CheckPassword). It answers nil when the password is the
// user's; a wrong password, or on an agent a user other than its own, is
// an error (peer.ErrLoginDenied), and so is too many failures (a
// *peer.RateLimitError). client is the browser's address, for
// the server's log.
type PasswordChecker interface {
	CheckPassword(ctx context.Context, user string, password []byte, client string) error
}

// remoteListen decides whether the console may listen on host: loopback
// always; another address only with TLS and a password check at the home
// server (passwords): an agent's console for its user, a server's for an
// admin of the domain. It is pure.
func remoteListen(host string, tls, passwords bool) error {
	switch {
	case isLoopback(host):
		return nil
	case !tls:
		return ErrNotLoopback
	case !passwords:
		return ErrNoPasswordCheck
	}
	return nil
}

// passwordLogin decides whether a console may take a user's password: when
// it can check it at the user's home server (checker). Who may then log
// in is the agent's own user (its home server says), or on a server an
// admin of the domain. It is pure.
func passwordLogin(checker bool) error {
	if !checker {
		return errors.New("this console takes the console token only: the password check at the home server is not set up")
	}
	return nil
}

// clientSource is the address a login is limited by: the client's IP
// (an IPv6 client's /64).
func clientSource(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

func retryMessage(w time.Duration) string {
	return fmt.Sprintf("Too many failed logins: try again in %d s.", int(math.Ceil(w.Seconds())))
}
