// Package console is the daemon's web console: an HTTP listener on
// loopback (by default) that serves, behind the home's token,
//
//   - the pages: an agent's folders, a server's chain, users, hosted
//     folders and recent security events (html/template, embedded assets,
//     a few lines of JavaScript for live updates), and a folder's page
//     with its history and restore buttons, its conflict copies (both
//     sides served read-only from inside the folder through os.Root) and
//     its transfer rate;
//   - the control API (package control's handler) under /v1/, the same
//     routes as the control socket, described in control's openapi.yaml;
//   - GET /metrics in the Prometheus text format;
//   - GET /events, the event stream as server-sent events: folder state
//     and progress, conflicts, role and leader changes, peers, security
//     events and errors.
//
// Authentication: the token in <home>/gui.token (0600, made on first
// use) is sent as "Authorization: Bearer TOKEN" by API clients, or
// exchanged at /login (the form, or a one-time code made by POST
// /login/code for 'baton gui') for a session cookie (HttpOnly,
// SameSite=Strict, Secure over TLS). Requests that change something are
// refused when they come from another origin (http.CrossOriginProtection).
// An address other than loopback needs TLS and a password check at the
// users' home servers ([PasswordChecker], *peer.Node, rate-limited here
// per browser address): an agent's login form also takes its user's name
// and password; a server's takes an admin's of the domain (a user whose
// record says Admin: 'baton user set NAME --admin'), and refuses other
// users with a clear message. Such a session reaches the pages and their
// changes (an admin's are made in the admin's name, control.WithUser, so
// the collections' rules check them), not the API, metrics or login
// codes; an admin's session ends once the Domain no longer says the user
// is an admin.
//
// Usage: the daemon makes a [Monitor] before its node (its LogHandler
// wraps the node's log handler, ObserveCommit is peer.Config.OnCommit),
// loads the token with [LoadToken], listens with [Listen], makes the
// console with [New] and serves it with [Console.Serve]. 'baton gui'
// reads the URL with [ReadURL].
package console
