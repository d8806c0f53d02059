package console

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer"
)

var randReader = rand.Reader

// Config is what a Console needs.
type Config struct {
	// API is the control API's handler (control.Server.Handler), served
	// under /v1/ behind the console's authentication.
	API http.Handler
	// Source is what the pages, metrics and events read.
	Source Source
	// Monitor gathers the node's commit latencies and log events.
	Monitor *Monitor
	// Actions makes the pages' changes; nil: the pages only show.
	Actions Actions
	// Token is the home's console token (LoadToken).
	Token string
	// Passwords checks a user's password at the user's home server, for
	// the login form's user name and password (an agent's console for its
	// user, a server's for an admin of the domain; it may then listen
	// beyond loopback with TLS); nil: the console takes the token only.
	Passwords PasswordChecker
	// Secure: the console is served over TLS (cookies are Secure).
	Secure bool
	// PollInterval is how often the event stream polls (default
	// PollInterval).
	PollInterval time.Duration
	Now          func() time.Time
	Rand         io.Reader
	Log          *slog.Logger
}

// Console is the daemon's web console: pages, the control API over HTTP,
// /metrics and /events, behind the home's token.
type Console struct {
	cfg      Config
	sessions *sessions
	limiter  *peer.LoginLimiter
	broker   *broker
	errs     *errorTimes
	handler  http.Handler
}

// New returns a console for cfg. It starts nothing: see Serve.
func New(cfg Config) (*Console, error) {
	switch {
	case cfg.API == nil, cfg.Source == nil, cfg.Monitor == nil:
		return nil, errors.New("console: API, Source and Monitor are required")
	case len(cfg.Token) < 32:
		return nil, errors.New("console: the token is missing or too short")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = randReader
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = PollInterval
	}
	c := &Console{cfg: cfg, errs: &errorTimes{}, limiter: peer.NewLoginLimiter()}
	c.sessions = newSessions(cfg.Token, cfg.Now, cfg.Rand)
	c.broker = newBroker(cfg.Source, cfg.Monitor, c.errs, cfg.Now, cfg.Log, cfg.PollInterval)
	reg := cfg.Monitor.Registry()
	if err := reg.Register(newStatusCollector(cfg.Source, cfg.Monitor, c.errs, cfg.Now, cfg.Log)); err != nil {
		return nil, fmt.Errorf("console: registering the status metrics (one console per monitor): %w", err)
	}
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c.handler = c.routes()
	return c, nil
}

// Handler is the console's HTTP handler.
func (c *Console) Handler() http.Handler { return c.handler }

func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", c.loginPage)
	mux.HandleFunc("POST /login", c.login)
	mux.HandleFunc("POST /logout", c.logout)
	mux.Handle("POST /login/code", c.authToken(http.HandlerFunc(c.loginCode)))
	mux.Handle("/v1/", c.authToken(withSource(c.cfg.API)))
	mux.Handle("GET /metrics", c.authToken(promhttp.HandlerFor(c.cfg.Monitor.Registry(), promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(c.cfg.Log.Handler(), slog.LevelWarn),
	})))
	mux.Handle("GET /events", c.auth(http.HandlerFunc(c.events), true))
	c.pageRoutes(mux)
	cop := http.NewCrossOriginProtection()
	return securityHeaders(cop.Handler(mux))
}

// securityHeaders keeps the console out of frames and other sites' reach.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// withSource tells the control API (and so its log) that a request came
// through the console, and from where.
func withSource(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(control.WithSource(r.Context(), "console "+r.RemoteAddr)))
	})
}

// Authentication failures.
var (
	errNoAuth    = errors.New("log in first: send the console token as 'Authorization: Bearer TOKEN' (it is in the home's gui.token), or log in at /login")
	errWrongAuth = errors.New("wrong console token")
)

// errTokenOnly refuses a user's session what takes the console token.
var errTokenOnly = errors.New("a session opened with a user's password reaches the pages only: the API, the metrics and login codes take the console token")

// errNoLongerAdmin ends an admin's session on a server's console once the
// Domain no longer says the user is an admin.
var errNoLongerAdmin = errors.New("your session ended: you are no longer an admin of the domain")

// authenticated reports whether r carries the token (Bearer) or a live
// session cookie, whose user ("" for the token's), and the error to
// answer when not. An admin's session on a server's console holds while
// the user is still an admin.
func (c *Console) authenticated(r *http.Request) (user string, err error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") && c.sessions.tokenOK(strings.TrimSpace(tok)) {
			return "", nil
		}
		return "", errWrongAuth
	}
	if ck, err := r.Cookie(SessionCookie); err == nil {
		ss, ok := c.sessions.valid(ck.Value)
		if !ok {
			return "", errWrongAuth
		}
		if ss.admin {
			ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout)
			defer cancel()
			if err := c.isAdmin(ctx, ss.user); err != nil {
				c.sessions.logout(ck.Value)
				c.cfg.Log.Info("console session of an admin ended", "user", ss.user, "remote", r.RemoteAddr, "err", err)
				return "", errNoLongerAdmin
			}
		}
		return ss.user, nil
	}
	return "", errNoAuth
}

// ErrNotAdmin refuses a password login at a server's console to a user
// who is not an admin of the domain.
var ErrNotAdmin = errors.New("not an admin of the domain")

// isAdmin checks that user is an admin in the Domain as this host has it.
func (c *Console) isAdmin(ctx context.Context, user string) error {
	users, err := c.cfg.Source.Users(ctx)
	if err != nil {
		return fmt.Errorf("reading the users: %w", err)
	}
	for _, u := range users {
		if u.Name == user {
			if u.Admin {
				return nil
			}
			break
		}
	}
	return fmt.Errorf("%s is %w", user, ErrNotAdmin)
}

// authToken serves h to the token and its sessions only: a user's
// session gets 403.
func (c *Console) authToken(h http.Handler) http.Handler {
	return c.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, _ := c.authenticated(r); user != "" {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": errTokenOnly.Error(), "code": "denied"})
			return
		}
		h.ServeHTTP(w, r)
	}), true)
}

// sessionUserKey is the context key of the user of an authenticated
// request ("" for the token's), set by auth.
type sessionUserKey struct{}

// sessionUser is the user whose session made r ("" for the token's).
func sessionUser(r *http.Request) string {
	u, _ := r.Context().Value(sessionUserKey{}).(string)
	return u
}

// auth serves h to authenticated requests only. Others get 401 (api) or
// a redirect to the login page.
func (c *Console) auth(h http.Handler, api bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, err := c.authenticated(r)
		if err == nil {
			h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionUserKey{}, user)))
			return
		}
		if !api {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="baton console"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": err.Error(), "code": "unauthorized"})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// setSession gives the browser session id.
func (c *Console) setSession(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    id,
		Path:     "/",
		MaxAge:   int(SessionTTL / time.Second),
		HttpOnly: true,
		Secure:   c.cfg.Secure,
		SameSite: http.SameSiteStrictMode,
	})
}

// login exchanges the token of the login form, or a user's name and
// password, for a session.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if user := strings.TrimSpace(r.PostFormValue("user")); user != "" {
		c.passwordLogin(w, r, user)
		return
	}
	id, err := c.sessions.login(strings.TrimSpace(r.PostFormValue("token")))
	if err != nil {
		c.loginFailed(w, r, err, "Wrong token: copy it again from the home's gui.token, or run 'baton gui'.")
		return
	}
	c.cfg.Monitor.consoleLogins.WithLabelValues("succeeded").Inc()
	c.cfg.Log.Info("console login", "remote", r.RemoteAddr)
	c.setSession(w, id)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *Console) loginFailed(w http.ResponseWriter, r *http.Request, err error, msg string) {
	c.cfg.Monitor.consoleLogins.WithLabelValues("failed").Inc()
	c.cfg.Log.Info("console login refused", "remote", r.RemoteAddr, "err", err)
	w.WriteHeader(http.StatusUnauthorized)
	c.renderLogin(w, msg)
}

// passwordLogin checks user's password at the user's home server and
// opens a session for the user. The password is kept nowhere; failures
// are rate-limited here per user and browser address (and at the home
// server per device), with the servers' login limiter.
func (c *Console) passwordLogin(w http.ResponseWriter, r *http.Request, user string) {
	password := []byte(r.PostFormValue("password"))
	defer clear(password)
	ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout)
	defer cancel()
	st, err := c.cfg.Source.Status(ctx)
	if err != nil {
		c.loginFailed(w, r, err, "The daemon does not answer: try again.")
		return
	}
	if err := passwordLogin(c.cfg.Passwords != nil); err != nil {
		c.loginFailed(w, r, err, "No password login here: "+err.Error()+". Log in with the console token.")
		return
	}
	server := !isAgent(st)
	source := clientSource(r.RemoteAddr)
	if wait := c.limiter.Wait(user, source, c.cfg.Now()); wait > 0 {
		c.loginFailed(w, r, errors.New("rate-limited"), retryMessage(wait))
		return
	}
	err = c.cfg.Passwords.CheckPassword(ctx, user, password, source)
	var limited *peer.RateLimitError
	switch {
	case err == nil:
	case errors.As(err, &limited):
		c.loginFailed(w, r, err, retryMessage(limited.RetryAfter))
		return
	case errors.Is(err, peer.ErrLoginDenied):
		c.limiter.Failed(user, source, c.cfg.Now())
		c.loginFailed(w, r, err, "Wrong user name or password.")
		return
	default:
		c.loginFailed(w, r, err, "The password could not be checked at the home server: "+err.Error())
		return
	}
	c.limiter.Succeeded(user, source)
	if server {
		// The password is the user's; a server's console is for admins.
		if err := c.isAdmin(ctx, user); err != nil {
			c.loginFailed(w, r, err, "The password is right, but "+user+" is not an admin of the domain: a server's console takes an admin's password only. "+
				"An admin, or the server's command line, can make a user one ('baton user set "+user+" --admin').")
			return
		}
	}
	id, err := c.sessions.newSession(user, server)
	if err != nil {
		c.loginFailed(w, r, err, "No session: "+err.Error())
		return
	}
	c.cfg.Monitor.consoleLogins.WithLabelValues("succeeded").Inc()
	c.cfg.Log.Info("console login with a password", "user", user, "admin", server, "remote", r.RemoteAddr)
	c.setSession(w, id)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout ends the session.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(SessionCookie); err == nil {
		c.sessions.logout(ck.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: c.cfg.Secure, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// LoginCode is POST /login/code's answer.
type LoginCode struct {
	Code string `json:"code"`
	// Path opens a session in a browser, once, within LoginCodeTTL.
	Path string `json:"path"`
}

// loginCode makes a one-time login code (for 'baton gui', which holds the
// token, to open a browser).
func (c *Console) loginCode(w http.ResponseWriter, r *http.Request) {
	code, err := c.sessions.newCode()
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error(), "code": "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, LoginCode{Code: code, Path: "/login?code=" + code})
}

// Serve serves the console on ln until ctx ends, then ends the event
// streams and requests in flight and closes ln. It returns when all of
// that is done.
func (c *Console) Serve(ctx context.Context, ln net.Listener) error {
	reqCtx, cancelReqs := context.WithCancel(context.Background())
	defer cancelReqs()
	srv := &http.Server{
		Handler:           c.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ErrorLog:          slog.NewLogLogger(c.cfg.Log.Handler(), slog.LevelDebug),
	}
	bctx, stopBroker := context.WithCancel(ctx)
	defer stopBroker()
	var wg sync.WaitGroup
	wg.Go(func() { c.broker.Run(bctx) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
		err = fmt.Errorf("console: %w", err)
	case <-ctx.Done():
	}
	stopBroker()
	cancelReqs()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutCtx); serr != nil {
		srv.Close()
	}
	if err == nil {
		<-errc
	}
	wg.Wait()
	return err
}
