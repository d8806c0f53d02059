package console

// Logins from beyond this machine: a user's password, checked at the
// user's home server, for an agent's console.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
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

// Console login limiter settings, as the servers' login limiter's.
const (
	consoleFreeFailures       = 3
	consoleFreeSourceFailures = 20
	consoleBaseDelay          = time.Second
	consoleMaxDelay           = 5 * time.Minute
	consoleForgetAfter        = 15 * time.Minute
	consoleMaxRecords         = 10000
)

// loginLimiter delays password logins after repeated failures, per user
// and client address and per client address, as the servers delay device
// logins: after the free failures each attempt waits consoleBaseDelay,
// doubling with each failure up to consoleMaxDelay, counted from the last
// failure; records are forgotten after consoleForgetAfter. The home
// server limits its checks too (for all the consoles of a device); this
// one keeps a guessing browser from using up the user's allowance there.
// Times are passed in; it is safe for concurrent use.
type loginLimiter struct {
	mu      sync.Mutex
	records map[limiterKey]*failures
}

type limiterKey struct{ user, source string }

type failures struct {
	count int
	last  time.Time
}

func newLoginLimiter() *loginLimiter { return &loginLimiter{records: map[limiterKey]*failures{}} }

func limiterKeys(user, source string) [2]struct {
	k    limiterKey
	free int
} {
	return [2]struct {
		k    limiterKey
		free int
	}{{limiterKey{user, source}, consoleFreeFailures}, {limiterKey{"", source}, consoleFreeSourceFailures}}
}

// wait is how long an attempt must still wait at now (0: go ahead).
func (l *loginLimiter) wait(user, source string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var longest time.Duration
	for _, r := range limiterKeys(user, source) {
		f := l.records[r.k]
		if f == nil || f.count < r.free || now.Sub(f.last) > consoleForgetAfter {
			continue
		}
		if w := f.last.Add(delayAfter(f.count, r.free)).Sub(now); w > longest {
			longest = w
		}
	}
	return longest
}

// delayAfter is the delay after n failures of which free are free.
func delayAfter(n, free int) time.Duration {
	if n < free {
		return 0
	}
	d := consoleBaseDelay
	for i := free; i < n && d < consoleMaxDelay; i++ {
		d *= 2
	}
	return min(d, consoleMaxDelay)
}

func (l *loginLimiter) failed(user, source string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.records) >= consoleMaxRecords {
		for k, f := range l.records {
			if now.Sub(f.last) > consoleForgetAfter {
				delete(l.records, k)
			}
		}
	}
	for _, r := range limiterKeys(user, source) {
		f := l.records[r.k]
		if f == nil || now.Sub(f.last) > consoleForgetAfter {
			f = &failures{}
			l.records[r.k] = f
		}
		f.count++
		f.last = now
	}
}

func (l *loginLimiter) succeeded(user, source string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.records, limiterKey{user, source})
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
