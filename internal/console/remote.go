package console

// Logins from beyond this machine: a user's password, checked at the
// user's home server, for an agent's console.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"time"
)

// PasswordChecker checks a user's password at the user's home server
// (*peer.Node on an agent: CheckPassword). It answers nil when the
// password is the user's; a wrong password, or a user other than the
// agent's own, is an error (peer.ErrLoginDenied), and so is too many
// failures (a *peer.RateLimitError). client is the browser's address, for
// the server's log.
type PasswordChecker interface {
	CheckPassword(ctx context.Context, user string, password []byte, client string) error
}

// ErrRemoteServer refuses a server's console beyond this machine.
var ErrRemoteServer = errors.New("a server's console is served on loopback only: the Domain has no administrator role " +
	"whose password the console could check, and the console token should not travel")

// remoteListen decides whether the console may listen on host: loopback
// always; another address only with TLS, on an agent, whose console
// checks its user's password at the user's home server (passwords). It
// is pure.
func remoteListen(host string, tls, agent, passwords bool) error {
	switch {
	case isLoopback(host):
		return nil
	case !tls:
		return ErrNotLoopback
	case !agent:
		return ErrRemoteServer
	case !passwords:
		return ErrNoPasswordCheck
	}
	return nil
}

// passwordLogin decides whether a console whose host has role may take a
// user's password: an agent's, for its own user (its home server says
// whether the user is); never a server's (ErrRemoteServer). It is pure.
func passwordLogin(role string, checker bool) error {
	switch {
	case role != "agent":
		return ErrRemoteServer
	case !checker:
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
