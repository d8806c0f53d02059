package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/baton-sync/baton/internal/atomicfile"
)

// TokenFile is the console's secret in the baton home: whoever can read it
// (the home's owner: it is 0600 in the 0700 home) can log in.
const TokenFile = "gui.token"

// SessionCookie is the name of the console's session cookie.
const SessionCookie = "baton_session"

// Session and login code lifetimes.
const (
	SessionTTL   = 12 * time.Hour
	LoginCodeTTL = time.Minute
	// maxSessions bounds the sessions kept: the oldest goes first.
	maxSessions = 256
)

// ErrBadToken is a login with a token that is not the home's.
var ErrBadToken = errors.New("wrong console token")

// LoadToken returns the console token of home, creating it (32 random
// bytes, base64url, mode 0600) when there is none. A token file that
// others may read is made private again.
func LoadToken(home string, rnd io.Reader) (string, error) {
	path := filepath.Join(home, TokenFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		tok := strings.TrimSpace(string(b))
		if len(tok) < 32 {
			return "", fmt.Errorf("console token %s is too short (%d characters): delete it to make a new one", path, len(tok))
		}
		st, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("console token: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(path, 0o600); err != nil {
				return "", fmt.Errorf("making the console token private: %w", err)
			}
		}
		return tok, nil
	case errors.Is(err, fs.ErrNotExist):
	default:
		return "", fmt.Errorf("reading the console token: %w", err)
	}
	tok, err := randomString(rnd, 32)
	if err != nil {
		return "", fmt.Errorf("making the console token: %w", err)
	}
	if err := atomicfile.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing the console token: %w", err)
	}
	return tok, nil
}

// ReadToken reads home's console token without making one.
func ReadToken(home string) (string, error) {
	b, err := os.ReadFile(filepath.Join(home, TokenFile))
	if err != nil {
		return "", fmt.Errorf("reading the console token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func randomString(rnd io.Reader, n int) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// sessions are the logged-in browsers and the one-time login codes. They
// live in memory: a restart logs everybody out.
type sessions struct {
	token string
	now   func() time.Time
	rnd   io.Reader

	mu    sync.Mutex
	byID  map[string]session   // session ID -> session
	codes map[string]time.Time // login code -> expiry
}

// session is a logged-in browser.
type session struct {
	expires time.Time
	// user is the user whose password opened it; "" for the console
	// token (or a login code made with it).
	user string
	// admin: opened on a server's console by an admin of the domain, who
	// must still be one at each request.
	admin bool
}

func newSessions(token string, now func() time.Time, rnd io.Reader) *sessions {
	return &sessions{token: token, now: now, rnd: rnd, byID: map[string]session{}, codes: map[string]time.Time{}}
}

// tokenOK reports whether tok is the console token, in constant time.
func (s *sessions) tokenOK(tok string) bool {
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) == 1
}

// login exchanges the token for a new session ID.
func (s *sessions) login(tok string) (string, error) {
	if !s.tokenOK(tok) {
		return "", ErrBadToken
	}
	return s.newSession("", false)
}

// newSession opens a session for user ("" for the token), an admin on a
// server's console if admin.
func (s *sessions) newSession(user string, admin bool) (string, error) {
	id, err := randomString(s.rnd, 32)
	if err != nil {
		return "", fmt.Errorf("making a session: %w", err)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	for len(s.byID) >= maxSessions {
		oldest, at := "", time.Time{}
		for k, ss := range s.byID {
			if oldest == "" || ss.expires.Before(at) {
				oldest, at = k, ss.expires
			}
		}
		delete(s.byID, oldest)
	}
	s.byID[id] = session{expires: now.Add(SessionTTL), user: user, admin: admin}
	return id, nil
}

// valid reports whether id is a live session, and returns it (its user
// "" for the token's).
func (s *sessions) valid(id string) (session, bool) {
	if id == "" {
		return session{}, false
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byID[id]
	if ok && !now.Before(ss.expires) {
		delete(s.byID, id)
		return session{}, false
	}
	return ss, ok
}

// logout ends session id.
func (s *sessions) logout(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

// newCode makes a one-time login code, for a command that holds the token
// to open a browser without putting the token on a command line.
func (s *sessions) newCode() (string, error) {
	code, err := randomString(s.rnd, 24)
	if err != nil {
		return "", fmt.Errorf("making a login code: %w", err)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if len(s.codes) >= maxSessions {
		return "", errors.New("too many login codes outstanding; try again in a minute")
	}
	s.codes[code] = now.Add(LoginCodeTTL)
	return code, nil
}

// redeem exchanges a login code, once, for a session.
func (s *sessions) redeem(code string) (string, error) {
	now := s.now()
	s.mu.Lock()
	exp, ok := s.codes[code]
	delete(s.codes, code)
	s.mu.Unlock()
	if !ok || !now.Before(exp) {
		return "", ErrBadToken
	}
	return s.newSession("", false)
}

// expire drops what has expired. s.mu is held.
func (s *sessions) expire(now time.Time) {
	for k, ss := range s.byID {
		if !now.Before(ss.expires) {
			delete(s.byID, k)
		}
	}
	for k, exp := range s.codes {
		if !now.Before(exp) {
			delete(s.codes, k)
		}
	}
}
