package peer

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/atomicfile"
)

// DefaultPasswordKDF are the argon2id parameters of new password hashes:
// 32 MiB, 2 passes, 2 lanes.
var DefaultPasswordKDF = identity.KDFParams{Time: 2, Memory: 32 << 10, Threads: 2}

// Password limits.
const (
	MaxPasswordSize = 1024 // bytes
	passwordHashLen = 32
	passwordSaltLen = 16
	passwordsFile   = "passwords.json"
	passwordsFormat = 1
)

// checkKDF bounds argon2id parameters, so that neither the configuration
// nor a damaged passwords file can make a login check unreasonably costly.
func checkKDF(p identity.KDFParams) error {
	if p.Time < 1 || p.Time > 16 || p.Memory < 64 || p.Memory > 1<<20 || p.Threads < 1 || p.Threads > 16 {
		return fmt.Errorf("argon2id parameters out of range (time %d, memory %d KiB, threads %d)", p.Time, p.Memory, p.Threads)
	}
	return nil
}

// passwordEntry is one user's stored password: an argon2id hash with its
// own salt and parameters.
type passwordEntry struct {
	Salt []byte             `json:"salt"`
	Hash []byte             `json:"hash"`
	KDF  identity.KDFParams `json:"argon2id"`
	Set  time.Time          `json:"set"`
}

type passwordFile struct {
	Format int                      `json:"format"`
	Users  map[string]passwordEntry `json:"users"`
}

// passwordStore holds the password hashes of this server's users in
// <DataDir>/passwords.json (owner-only, replaced atomically). It is never
// replicated: users authenticate at their home server only. It is safe
// for concurrent use; hashing happens outside its lock.
type passwordStore struct {
	path string
	kdf  identity.KDFParams

	mu    sync.Mutex
	users map[string]passwordEntry
}

// openPasswords loads the store at path (a missing file is empty).
func openPasswords(path string, kdf identity.KDFParams) (*passwordStore, error) {
	s := &passwordStore{path: path, kdf: kdf, users: map[string]passwordEntry{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading passwords: %w", err)
	}
	var f passwordFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("reading passwords from %s: %w", path, err)
	}
	if f.Format != passwordsFormat {
		return nil, fmt.Errorf("reading passwords from %s: format %d, want %d", path, f.Format, passwordsFormat)
	}
	for name, e := range f.Users {
		if err := checkKDF(e.KDF); err != nil || len(e.Salt) < 8 || len(e.Hash) != passwordHashLen {
			return nil, fmt.Errorf("reading passwords from %s: entry for %s is damaged", path, name)
		}
		s.users[name] = e
	}
	return s, nil
}

// saveLocked writes the store; the caller holds s.mu.
func (s *passwordStore) saveLocked() error {
	b, err := json.MarshalIndent(passwordFile{Format: passwordsFormat, Users: s.users}, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding passwords: %w", err)
	}
	if err := atomicfile.WriteFile(s.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving passwords: %w", err)
	}
	return nil
}

// set stores a new hash of password for user.
func (s *passwordStore) set(user string, password []byte, now time.Time) error {
	if len(password) == 0 || len(password) > MaxPasswordSize {
		return fmt.Errorf("a password must be 1 to %d bytes", MaxPasswordSize)
	}
	salt := make([]byte, passwordSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return fmt.Errorf("making a salt: %w", err)
	}
	e := passwordEntry{Salt: salt, KDF: s.kdf, Set: now.UTC()}
	e.Hash = hashPassword(password, e.Salt, e.KDF)
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.users[user]
	s.users[user] = e
	if err := s.saveLocked(); err != nil {
		if had {
			s.users[user] = old
		} else {
			delete(s.users, user)
		}
		return err
	}
	return nil
}

// check reports whether password is user's. A user without a password
// costs as much as a wrong password, so timing does not tell them apart.
func (s *passwordStore) check(user string, password []byte) bool {
	s.mu.Lock()
	e, ok := s.users[user]
	s.mu.Unlock()
	if !ok {
		e = passwordEntry{Salt: make([]byte, passwordSaltLen), Hash: make([]byte, passwordHashLen), KDF: s.kdf}
	}
	got := hashPassword(password, e.Salt, e.KDF)
	return subtle.ConstantTimeCompare(got, e.Hash) == 1 && ok
}

// has reports whether user has a password.
func (s *passwordStore) has(user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.users[user]
	return ok
}

// remove deletes the passwords of users; it is not an error if they have
// none.
func (s *passwordStore) remove(users ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	removed := map[string]passwordEntry{}
	for _, u := range users {
		if e, ok := s.users[u]; ok {
			removed[u] = e
			delete(s.users, u)
		}
	}
	if len(removed) == 0 {
		return nil
	}
	if err := s.saveLocked(); err != nil {
		maps.Copy(s.users, removed)
		return err
	}
	return nil
}

// list is the users with a password, sorted.
func (s *passwordStore) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.users))
}

func hashPassword(password, salt []byte, p identity.KDFParams) []byte {
	return argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, passwordHashLen)
}

// --- rate limiting of failed logins ---

// Limiter settings.
const (
	loginFreeFailures       = 3                // failures for a user from a source before any delay
	loginFreeSourceFailures = 20               // failures from a source, for any users, before any delay
	loginBaseDelay          = time.Second      // the delay after the free failures
	loginMaxDelay           = 5 * time.Minute  // the longest delay
	loginForgetAfter        = 15 * time.Minute // an idle record is forgotten
	loginMaxRecords         = 10000            // records kept before idle ones are dropped
)

// RateLimitError refuses a login attempt after too many failures.
type RateLimitError struct {
	User       string
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("too many failed logins for %s; try again in %ds", e.User, int(math.Ceil(e.RetryAfter.Seconds())))
}

func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// loginLimiter delays login attempts after repeated failures, per user
// and source address (sourceOf), and per source address for all users:
// after loginFreeFailures failures for a user from a source (or
// loginFreeSourceFailures from a source for any users), each further
// attempt from there must wait loginBaseDelay, doubling with each failure
// up to loginMaxDelay, counted from the last failure. Nothing is keyed by
// the user alone, so failures from one address never delay the user
// logging in from another; and since the delay is bounded and records are
// forgotten after loginForgetAfter, no one is locked out for good. A
// success clears the user's record at that source. It is pure (the caller
// passes the time) and safe for concurrent use.
type loginLimiter struct {
	mu      sync.Mutex
	records map[limiterKey]*failures
}

// limiterKey is a record's key: user "" for a source's record.
type limiterKey struct{ user, source string }

type failures struct {
	count int
	last  time.Time
}

func newLoginLimiter() *loginLimiter { return &loginLimiter{records: map[limiterKey]*failures{}} }

// limiterKeys are the records an attempt counts in, with their free
// failures.
func limiterKeys(user, source string) [2]struct {
	k    limiterKey
	free int
} {
	return [2]struct {
		k    limiterKey
		free int
	}{{limiterKey{user, source}, loginFreeFailures}, {limiterKey{"", source}, loginFreeSourceFailures}}
}

// wait is how long an attempt for user from source must still wait at
// now; zero means it may go ahead.
func (l *loginLimiter) wait(user, source string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var longest time.Duration
	for _, r := range limiterKeys(user, source) {
		f := l.records[r.k]
		if f == nil || f.count < r.free {
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
	d := loginBaseDelay
	for i := free; i < n && d < loginMaxDelay; i++ {
		d *= 2
	}
	return min(d, loginMaxDelay)
}

// failed records a failed attempt.
func (l *loginLimiter) failed(user, source string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.records) >= loginMaxRecords {
		for k, f := range l.records {
			if now.Sub(f.last) > loginForgetAfter {
				delete(l.records, k)
			}
		}
	}
	for _, r := range limiterKeys(user, source) {
		f := l.records[r.k]
		if f == nil || now.Sub(f.last) > loginForgetAfter {
			f = &failures{}
			l.records[r.k] = f
		}
		f.count++
		f.last = now
	}
}

// succeeded clears the record of user at source. The source's record
// stays: one success does not clear another user's failures there.
func (l *loginLimiter) succeeded(user, source string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.records, limiterKey{user, source})
}
