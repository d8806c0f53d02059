package multiprocess

// The console in a real browser: headless Chromium, driven with chromedp,
// opens the consoles of a running domain's agent and server, logs in with
// the token of each home, creates and shares a folder through the agent's
// forms, watches a file written on another agent arrive on the open page
// (the event stream, no reload), checks the pages at a phone's width and
// takes screenshots.

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Time limits of the browser test.
const (
	browserStep    = 30 * time.Second // one page action: a navigation, a form, a screenshot
	browserPoll    = 100 * time.Millisecond
	liveTimeout    = 60 * time.Second // a file written on bob's laptop showing on alice's open page
	desktopWidth   = 1000             // the screenshots' width, in CSS pixels
	desktopHeight  = 800
	phoneWidth     = 390 // a phone's width: the pages must not scroll sideways
	phoneHeight    = 844
	requireBrowser = "BATON_REQUIRE_BROWSER" // set (CI): no browser fails the test instead of skipping it
	screenshotsDir = "BATON_SCREENSHOTS"     // set to a directory: the screenshots are written there
)

// chromiumNames are the browser commands looked for, in order.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}

// findChromium returns the path of a Chromium binary. Without one it skips
// the test, or fails it when BATON_REQUIRE_BROWSER is set.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range chromiumNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("no Chromium found (looked for %s on PATH): install it (apt-get install chromium)", strings.Join(chromiumNames, ", "))
	if os.Getenv(requireBrowser) != "" {
		t.Fatalf("%s; %s is set, so the browser test may not skip", msg, requireBrowser)
	}
	t.Skipf("%s; skipping the browser test (set %s=1 to make this a failure)", msg, requireBrowser)
	return ""
}

// browser is a headless Chromium and its first tab.
type browser struct {
	t   *testing.T
	ctx context.Context // the first tab
}

// tab is one tab of the browser, on one console.
type tab struct {
	b    *browser
	name string // whose console, for messages
	ctx  context.Context
}

// newBrowser starts headless Chromium at path with a profile in a
// temporary directory. When t ends the browser is stopped (the allocator
// waits for its process) and the profile removed. parent bounds its life.
func newBrowser(t *testing.T, parent context.Context, path string) *browser {
	t.Helper()
	profile, err := os.MkdirTemp("", "baton-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(desktopWidth, desktopHeight),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, acancel := chromedp.NewExecAllocator(parent, opts...)
	// chromedp's errors go to the test's log while it runs, not after.
	var stopped atomic.Bool
	errorf := func(format string, args ...any) {
		if !stopped.Load() {
			t.Logf("chromedp: "+format, args...)
		}
	}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(errorf))
	t.Cleanup(func() {
		stopped.Store(true)
		cancel()
		acancel() // kills the browser and waits for it
		if err := removeRetry(profile, 10*time.Second); err != nil {
			t.Errorf("removing the browser's profile: %v", err)
		}
	})
	// The first action starts the browser, on the tab's own context: a
	// shorter one would stop the browser when it ends.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return &browser{t: t, ctx: ctx}
}

// removeRetry removes dir, trying again for up to timeout while the
// browser's last child processes still write into it.
func removeRetry(dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := os.RemoveAll(dir)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// newTab opens a new tab.
func (b *browser) newTab(name string) *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	// As for the browser, the first action opens the tab on its own
	// context.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		b.t.Fatalf("opening a tab for %s's console: %v", name, err)
	}
	return &tab{b: b, name: name, ctx: ctx}
}

// firstTab is the browser's first tab.
func (b *browser) firstTab(name string) *tab { return &tab{b: b, name: name, ctx: b.ctx} }

// do runs actions on the tab within browserStep.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStep)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.b.t.Fatalf("%s's console: %s: %v%s", tb.name, what, err, tb.describe())
	}
}

// eval evaluates expr in the tab's page.
func evalIn[T any](tb *tab, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, browserStep)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// mustEval is evalIn that must succeed.
func mustEval[T any](tb *tab, what, expr string) T {
	tb.b.t.Helper()
	v, err := evalIn[T](tb, expr)
	if err != nil {
		tb.b.t.Fatalf("%s's console: %s: %v%s", tb.name, what, err, tb.describe())
	}
	return v
}

// describe is the page's address and the start of its text, for failure
// messages; "" if the page cannot be read.
func (tb *tab) describe() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + (document.body ? document.body.innerText : "")`))
	if err != nil {
		return ""
	}
	if len(s) > 3000 {
		s = s[:3000] + "…"
	}
	return "\npage: " + s
}

// waitJS evaluates expr every browserPoll until it gives a string other
// than "", and returns it; it fails the test after timeout. expr may be
// evaluated while a new page loads (an error is then a "not yet").
func (tb *tab) waitJS(timeout time.Duration, what, expr string) string {
	tb.b.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		s, err := evalIn[string](tb, expr)
		if err == nil && s != "" {
			return s
		}
		last = err
		if time.Now().After(deadline) || tb.ctx.Err() != nil {
			tb.b.t.Fatalf("%s's console: timed out after %v waiting for %s (last error: %v)%s", tb.name, timeout, what, last, tb.describe())
		}
		time.Sleep(browserPoll)
	}
}

// submit fills a form's fields (name -> value) and presses its button,
// then waits for the answer page: its "Done: ..." line is returned, its
// "Not done: ..." line too (with ok false).
func (tb *tab) submit(form string, fields map[string]string) (msg string, ok bool) {
	tb.b.t.Helper()
	sel := fmt.Sprintf(`form[action=%q]`, form)
	var actions []chromedp.Action[chromedp.Void]
	for name, v := range fields {
		actions = append(actions, chromedp.SetValue(chromedp.CSS(fmt.Sprintf(`%s [name=%q]`, sel, name)), v))
	}
	// The page being left is marked, so that the answer is not read from it.
	actions = append(actions,
		chromedp.Evaluate[chromedp.Void](`window.batonOld = true`),
		chromedp.Click(chromedp.CSS(sel+` button[type="submit"]`)),
	)
	tb.do("submitting "+form, actions...)
	got := tb.waitJS(browserStep, "the answer to "+form, `(function () {
		if (window.batonOld || document.readyState !== "complete") return "";
		var d = document.querySelector("p.done"), e = document.querySelector("p.error");
		if (d) return "ok " + d.textContent;
		if (e) return "error " + e.textContent;
		return "";
	})()`)
	msg, _ = strings.CutPrefix(got, "ok ")
	if msg != got {
		return msg, true
	}
	msg, _ = strings.CutPrefix(got, "error ")
	return msg, false
}

// login opens the console at url and logs in with the token in home's
// gui.token through the login form, then waits for the page of host.
func (tb *tab) login(url, home, host string) {
	tb.b.t.Helper()
	tok, err := os.ReadFile(filepath.Join(home, "gui.token"))
	if err != nil {
		tb.b.t.Fatalf("%s's console token: %v", tb.name, err)
	}
	tb.do("opening "+url, chromedp.Navigate(url))
	// Not logged in yet: the console sends the browser to its login form.
	tb.waitJS(browserStep, "the login form", `location.pathname === "/login" && document.querySelector("#token") ? "yes" : ""`)
	tb.do("logging in",
		chromedp.SendKeys(chromedp.ID("token"), strings.TrimSpace(string(tok))),
		chromedp.Evaluate[chromedp.Void](`window.batonOld = true`),
		chromedp.Submit(chromedp.ID("token")),
	)
	title := tb.waitJS(browserStep, host+"'s page", `!window.batonOld && document.readyState === "complete" && location.pathname === "/" ? document.querySelector("header h1").textContent : ""`)
	if !strings.Contains(title, host) {
		tb.b.t.Fatalf("%s's console: logged in, the page's title is %q; want it to name %s", tb.name, title, host)
	}
}

// consoleURL is the URL of the console of n's running daemon.
func consoleURL(t *testing.T, n *node) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.home, "gui.url"))
	if err != nil {
		t.Fatalf("%s's console address (gui.url, written by 'baton run'): %v", n.name, err)
	}
	return strings.TrimSpace(string(b))
}

// overflowJS lists what scrolls sideways: the page, or a section of it.
const overflowJS = `(function () {
	var bad = [], de = document.documentElement;
	if (de.scrollWidth > de.clientWidth) bad.push("the page is " + de.scrollWidth + " px wide");
	document.querySelectorAll("section").forEach(function (s) {
		if (s.scrollWidth > s.clientWidth + 1) {
			var h = s.querySelector("h2");
			bad.push("section " + JSON.stringify(h ? h.textContent : "?") + " is " + s.scrollWidth + " px wide in " + s.clientWidth);
		}
	});
	return bad.join("; ");
})()`

// checkPhoneWidth shows the page at a phone's width and fails the test if
// anything on it scrolls sideways; then the desktop width is back.
func (tb *tab) checkPhoneWidth() {
	tb.b.t.Helper()
	tb.do("emulating a phone", chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateMobile))
	bad := mustEval[string](tb, "measuring the page", overflowJS)
	tb.do("back to the desktop", chromedp.EmulateViewport(desktopWidth, desktopHeight))
	if bad != "" {
		tb.b.t.Errorf("%s's console at %d px: %s", tb.name, phoneWidth, bad)
	}
}

// screenshot takes a PNG of the whole page at the desktop width and
// writes it to dir/name.
func (tb *tab) screenshot(dir, name string) {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStep)
	defer cancel()
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.b.t.Fatalf("%s's console: screenshot: %v", tb.name, err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		tb.b.t.Fatalf("%s's console: the screenshot is no PNG: %v", tb.name, err)
	}
	if cfg.Width != desktopWidth || cfg.Height < 200 {
		tb.b.t.Errorf("%s's console: screenshot %dx%d; want %d wide and a page's height", tb.name, cfg.Width, cfg.Height, desktopWidth)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, img, 0o644); err != nil {
		tb.b.t.Fatal(err)
	}
	tb.b.t.Logf("%s's console: screenshot %s (%dx%d, %d bytes)", tb.name, path, cfg.Width, cfg.Height, len(img))
}

// TestConsoleInBrowser: alice's laptop's console creates a folder and
// shares it with bob through its forms; bob accepts it through his
// laptop's console and writes a file,
// which shows on alice's open page without a reload; s1's console shows the
// chain, the users, their devices and the hosted folder. Both pages must
// fit a phone's width. The screenshots go to $BATON_SCREENSHOTS when set.
func TestConsoleInBrowser(t *testing.T) {
	skipIfShort(t)
	chrome := findChromium(t)
	shots := os.Getenv(screenshotsDir)
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	d, alice, bob := newPairDomain(t)
	s1 := d.servers[0]
	b := newBrowser(t, d.ctx, chrome)

	// alice's laptop: log in with the token.
	at := b.firstTab("alice-laptop")
	at.login(consoleURL(t, alice.node), alice.home, "alice-laptop")
	at.checkPhoneWidth()

	// Create a folder through the page. The device may not be known at its
	// home server for a moment after it started: the page says so, and a
	// user tries again.
	dir := filepath.Join(d.dir, "alice-Shared") // made by the console, as by 'folder create'
	deadline := time.Now().Add(settleTimeout)
	for {
		msg, ok := at.submit("/action/folder-create", map[string]string{"name": "Shared", "path": dir})
		if ok {
			t.Logf("alice-laptop's console: %s", msg)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice-laptop's console: creating folder Shared: %s", msg)
		}
		t.Logf("alice-laptop's console: not done yet: %s", msg)
		time.Sleep(pollInterval)
	}
	id := mustEval[string](at, "the folder's row", `(function () {
		var r = [...document.querySelectorAll("tr[data-folder]")].find(function (r) { return r.querySelector("strong").textContent === "Shared"; });
		return r ? r.dataset.folder : "";
	})()`)
	if id == "" {
		t.Fatalf("alice-laptop's console: no row for folder Shared after creating it%s", at.describe())
	}
	if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
		t.Fatalf("the folder created through the page is not synced at %s: %v", dir, err)
	}

	// Share it with bob, read-write, through the row's form.
	msg, ok := at.submit("/action/folder-share", map[string]string{"user": "bob", "rights": "rw"})
	if !ok {
		t.Fatalf("alice-laptop's console: sharing Shared with bob: %s", msg)
	}
	t.Logf("alice-laptop's console: %s", msg)
	members := mustEval[string](at, "the members", fmt.Sprintf(`document.querySelector('tr[data-folder=%q] td.wrap').textContent`, id))
	if !strings.Contains(members, "bob (rw)") {
		t.Errorf("alice-laptop's console: members of Shared after sharing: %q; want bob (rw) among them", members)
	}

	// bob accepts it on his laptop's console, in a second tab, once the
	// share reached it (a reload shows it).
	bt := b.newTab("bob-laptop")
	bt.login(consoleURL(t, bob.node), bob.home, "bob-laptop")
	offered := fmt.Sprintf(`document.querySelector('form[action="/action/folder-accept"] input[name="folder"][value=%q]') ? "yes" : ""`, id)
	deadline = time.Now().Add(settleTimeout)
	for {
		if s, err := evalIn[string](bt, offered); err == nil && s != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob-laptop's console does not offer Shared to accept after %v%s", settleTimeout, bt.describe())
		}
		time.Sleep(pollInterval)
		bt.do("reloading", chromedp.Reload())
	}
	bobDir := filepath.Join(d.dir, "bob-Shared")
	if msg, ok := bt.submit("/action/folder-accept", map[string]string{"path": bobDir}); !ok {
		t.Fatalf("bob-laptop's console: accepting Shared: %s", msg)
	} else {
		t.Logf("bob-laptop's console: %s", msg)
	}
	bt.checkPhoneWidth()

	// alice's page, left open, hears of a file bob writes: the row's count
	// of files changes, with no reload.
	d.waitInSync(alice, "Shared", arriveTimeout)
	d.waitInSync(bob, "Shared", arriveTimeout)
	here := fmt.Sprintf(`document.querySelector('tr[data-folder=%q] [data-field="here"]')`, id)
	before := mustEval[string](at, "the folder's files", here+`.textContent`)
	if !strings.HasPrefix(before, "0 files") {
		t.Fatalf("alice-laptop's console: Shared holds %q before bob writes; want 0 files", before)
	}
	mustEval[bool](at, "marking the page", `window.batonNoReload = true`)
	d.writeFile(bobDir, "from-bob.txt", []byte("written on bob's laptop\n"))
	start := time.Now()
	after := at.waitJS(liveTimeout, "from-bob.txt to show on the open page", here+`.textContent.indexOf("1 files") === 0 ? `+here+`.textContent : ""`)
	t.Logf("alice-laptop's console: Shared shows %q %v after bob wrote from-bob.txt", after, time.Since(start).Round(time.Millisecond))
	if !mustEval[bool](at, "checking for a reload", `window.batonNoReload === true`) {
		t.Errorf("alice-laptop's console: the page was reloaded to show the file; want it changed in place by the event stream")
	}
	if live := mustEval[string](at, "the live events", `document.getElementById("live").textContent`); !strings.Contains(live, "Folder") {
		t.Errorf("alice-laptop's console: the live events list %q; want the folder's events", live)
	}
	at.screenshot(shots, "console-agent.png")

	// s1's console, in a third tab: the domain, users, devices, folders.
	st := b.newTab("s1")
	st.login(consoleURL(t, s1.node), s1.home, "s1")
	text := mustEval[string](st, "the page's text", `document.body.innerText`)
	for _, want := range []string{
		"The chain", "Leader", "Voters", // the domain
		"Servers", "Users", "alice", "bob", // users
		"Devices of users homed here", "alice-laptop", "bob-laptop", // devices
		"Folders hosted here", "Shared", // folders
		"Recent security events",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("s1's console lacks %q", want)
		}
	}
	st.checkPhoneWidth()
	st.screenshot(shots, "console-server.png")
	// The hosted folder's page: its history has bob's file.
	st.do("opening the folder's page", chromedp.Navigate(strings.TrimSuffix(consoleURL(t, s1.node), "/")+"/folder/"+id))
	st.waitJS(browserStep, "the folder's history on s1", `document.readyState === "complete" && document.body.innerText.indexOf("from-bob.txt") >= 0 ? "yes" : ""`)
	st.checkPhoneWidth()

	// The folder's own page, on the agent.
	at.do("opening the folder's page", chromedp.Navigate(strings.TrimSuffix(consoleURL(t, alice.node), "/")+"/folder/"+id))
	at.waitJS(browserStep, "the folder's page", `document.readyState === "complete" && document.body.innerText.indexOf("from-bob.txt") >= 0 ? "yes" : ""`)
	at.checkPhoneWidth()

	// Logging in to s1's console in the same browser did not log alice's
	// laptop's console out (both are on 127.0.0.1).
	at.do("opening alice-laptop's page again", chromedp.Navigate(consoleURL(t, alice.node)))
	where := at.waitJS(browserStep, "alice-laptop's page", `document.readyState === "complete" ? location.pathname : ""`)
	if where != "/" {
		t.Fatalf("alice-laptop's console after logging in to s1's: at %s; want still logged in (at /)", where)
	}

	// A new folder changes the page's shape, which reloads it; but not
	// under a form being filled in, whose text would be lost: the page
	// says it is out of date instead.
	userField := chromedp.CSS(`form[action="/action/folder-share"] input[name="user"]`)
	at.do("typing into the share form", chromedp.SendKeys(userField, "car"))
	mustEval[bool](at, "marking the page", `window.batonNoReload = true`)
	d.createFolder(alice, "Second", filepath.Join(d.dir, "alice-Second"))
	at.waitJS(liveTimeout, "the page to say it is out of date", `document.getElementById("stale-page") ? "yes" : ""`)
	if typed := mustEval[string](at, "the share form", `document.querySelector('form[action="/action/folder-share"] input[name="user"]').value`); typed != "car" ||
		!mustEval[bool](at, "checking for a reload", `window.batonNoReload === true`) {
		t.Errorf("alice-laptop's console: the share form holds %q after a folder was added; want what was typed (car), and no reload", typed)
	}
}
