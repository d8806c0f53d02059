package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSystemdQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/baton":     "/usr/bin/baton",
		"/home/ann/My Baton": `"/home/ann/My Baton"`,
		`/a"b\c`:             `"/a\"b\\c"`,
		"/home/%u/$HOME":     "/home/%%u/$$HOME",
		"":                   `""`,
		"/tmp/x y%z":         `"/tmp/x y%%z"`,
	} {
		if got := systemdQuote(in); got != want {
			t.Errorf("systemdQuote(%q) = %s; want %s", in, got, want)
		}
	}
}

// directives are a unit's settings, without comments, blank lines and
// the keys in skip.
func directives(t *testing.T, unit []byte, skip ...string) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, _, _ := strings.Cut(line, "=")
		if slices.Contains(skip, key) {
			continue
		}
		out = append(out, line)
	}
	return out
}

// TestSystemdAgentUnitInStep: the agent unit in contrib/systemd is the one
// 'service install --user' writes, but for the command line.
func TestSystemdAgentUnitInStep(t *testing.T) {
	repo, err := os.ReadFile(filepath.FromSlash("../../contrib/systemd/baton-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	gen := systemdUserUnit(serviceSpec{Exe: "/usr/local/bin/baton", Home: "/home/ann/.config/baton"})
	got, want := directives(t, repo, "ExecStart", "Description"), directives(t, gen, "ExecStart", "Description")
	if !slices.Equal(got, want) {
		t.Errorf("contrib/systemd/baton-agent.service settings\n%s\nwant those 'service install --user' writes\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSystemdUnitsVerify: systemd-analyze verify accepts the units in
// contrib/systemd and the one 'service install --user' writes (their
// executable replaced by one that exists here), with no warning.
func TestSystemdUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	exe, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no 'true' to stand for baton")
	}
	dir := t.TempDir()
	units := map[string][]byte{
		"generated.service":      systemdUserUnit(serviceSpec{Exe: exe, Home: "/home/ann/My Baton %x", PassphraseFile: "/home/ann/pass phrase"}),
		"system-default.service": systemdSystemUnit(systemSpec{serviceSpec: serviceSpec{Exe: exe, Home: "/var/lib/baton"}, User: "root", Group: "root"}),
		"system-home.service":    systemdSystemUnit(systemSpec{serviceSpec: serviceSpec{Exe: exe, Home: "/home/ann/My Baton %x"}, User: "root", Group: "root"}),
		"system-srv.service":     systemdSystemUnit(systemSpec{serviceSpec: serviceSpec{Exe: exe, Home: "/srv/baton"}, User: "root", Group: "root"}),
	}
	for _, name := range []string{"baton-server.service", "baton-agent.service"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "contrib", "systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		units[name] = bytes.ReplaceAll(b, []byte("/usr/local/bin/baton"), []byte(exe))
	}
	for name, data := range units {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		// The system manager's verify: a user manager is not always
		// reachable (in containers and CI); the checks of the unit file
		// are the same.
		out, err := exec.Command(analyze, "verify", p).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) != 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s\n%s", name, err, out, data)
		}
	}
}

// TestSystemdServerUnitInStep: the server unit in contrib/systemd is the
// one 'service install' writes for /var/lib/baton, but for the command
// line.
func TestSystemdServerUnitInStep(t *testing.T) {
	repo, err := os.ReadFile(filepath.FromSlash("../../contrib/systemd/baton-server.service"))
	if err != nil {
		t.Fatal(err)
	}
	gen := systemdSystemUnit(systemSpec{serviceSpec: serviceSpec{Exe: "/usr/local/bin/baton", Home: "/var/lib/baton"}, User: "baton", Group: "baton"})
	got, want := directives(t, repo, "ExecStart"), directives(t, gen, "ExecStart")
	if !slices.Equal(got, want) {
		t.Errorf("contrib/systemd/baton-server.service settings\n%s\nwant those 'service install' writes\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSystemdSystemUnitHome: a home other than /var/lib/baton is made
// writable, and one under /home bound into the hidden home directories.
func TestSystemdSystemUnitHome(t *testing.T) {
	for home, want := range map[string][]string{
		"/var/lib/baton":     {"ProtectHome=yes"},
		"/srv/baton":         {"ProtectHome=yes", "ReadWritePaths=/srv/baton"},
		"/home/ann/my baton": {"ProtectHome=tmpfs", `BindPaths="/home/ann/my baton"`},
		"/root/baton":        {"ProtectHome=tmpfs", "BindPaths=/root/baton"},
	} {
		unit := systemdSystemUnit(systemSpec{serviceSpec: serviceSpec{Exe: "/usr/bin/baton", Home: home}, User: "ann", Group: "ann"})
		var got []string
		for _, d := range directives(t, unit) {
			if strings.HasPrefix(d, "ProtectHome=") || strings.HasPrefix(d, "BindPaths=") || strings.HasPrefix(d, "ReadWritePaths=") {
				got = append(got, d)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("home %s: %q; want %q", home, got, want)
		}
		if d := directives(t, unit); !slices.Contains(d, "ExecStart=/usr/bin/baton --home "+systemdQuote(home)+" run") || !slices.Contains(d, "User=ann") {
			t.Errorf("home %s: unit\n%s", home, unit)
		}
	}
}
