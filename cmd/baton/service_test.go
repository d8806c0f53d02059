package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
)

func TestWindowsQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{`C:\baton\baton.exe`, `C:\baton\baton.exe`},
		{`C:\Program Files\baton\baton.exe`, `"C:\Program Files\baton\baton.exe"`},
		{"", `""`},
		{`a"b`, `"a\"b"`},
		{`C:\dir with space\`, `"C:\dir with space\\"`},
		{`x\"y`, `"x\\\"y"`},
		{"tab\there", "\"tab\there\""},
	} {
		if got := windowsQuote(tc.in); got != tc.want {
			t.Errorf("windowsQuote(%q) = %s; want %s", tc.in, got, tc.want)
		}
	}
}

var spec = serviceSpec{
	Exe:     "/Applications/baton & co/baton",
	Home:    "/Users/ann/Library/Application Support/baton",
	LogFile: "/Users/ann/Library/Application Support/baton/<baton>.log",
}

func TestLaunchdPlist(t *testing.T) {
	data := launchdPlist(spec)
	// The plist as launchd reads it: a dict of keys and values.
	var doc struct {
		Dict struct {
			Keys    []string `xml:"key"`
			Strings []string `xml:"string"`
			Array   []string `xml:"array>string"`
		} `xml:"dict"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("launchdPlist is not XML: %v\n%s", err, data)
	}
	want := []string{spec.Exe, "--home", spec.Home, "run"}
	if !slices.Equal(doc.Dict.Array, want) {
		t.Errorf("ProgramArguments = %q; want %q", doc.Dict.Array, want)
	}
	if wantKeys := []string{"Label", "ProgramArguments", "RunAtLoad", "KeepAlive", "ProcessType", "StandardOutPath", "StandardErrorPath"}; !slices.Equal(doc.Dict.Keys, wantKeys) {
		t.Errorf("keys = %q; want %q", doc.Dict.Keys, wantKeys)
	}
	if !slices.Equal(doc.Dict.Strings, []string{serviceLabel, "Background", spec.LogFile, spec.LogFile}) {
		t.Errorf("strings = %q; want the label, Background and the log file twice", doc.Dict.Strings)
	}
	withPass := spec
	withPass.PassphraseFile = "/Users/ann/.baton-pass"
	var doc2 struct {
		Array []string `xml:"dict>array>string"`
	}
	if err := xml.Unmarshal(launchdPlist(withPass), &doc2); err != nil {
		t.Fatal(err)
	}
	if want := []string{spec.Exe, "--home", spec.Home, "--passphrase-file", withPass.PassphraseFile, "run"}; !slices.Equal(doc2.Array, want) {
		t.Errorf("ProgramArguments with a passphrase file = %q; want %q", doc2.Array, want)
	}
}

func TestScheduledTaskXML(t *testing.T) {
	s := serviceSpec{Exe: `C:\Program Files\baton\baton.exe`, Home: `C:\Users\ann\AppData\Roaming\baton`}
	data, err := scheduledTaskXML(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte{0xff, 0xfe}) || len(data)%2 != 0 {
		t.Fatalf("scheduledTaskXML does not start with a UTF-16LE byte order mark: % x", data[:4])
	}
	u := make([]uint16, 0, len(data)/2-1)
	for i := 2; i < len(data); i += 2 {
		u = append(u, uint16(data[i])|uint16(data[i+1])<<8)
	}
	text := string(utf16.Decode(u))
	if !strings.HasPrefix(text, `<?xml version="1.0" encoding="UTF-16"?>`) {
		t.Errorf("declaration: %q", text[:40])
	}
	// encoding/xml reads only UTF-8: the declaration aside, the text is.
	_, body, _ := strings.Cut(text, "?>")
	var got task
	if err := xml.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("task is not XML: %v\n%s", err, text)
	}
	if got.Exec.Command != s.Exe || got.Exec.Arguments != `--home C:\Users\ann\AppData\Roaming\baton run` {
		t.Errorf("action: %q %q; want the executable and --home HOME run", got.Exec.Command, got.Exec.Arguments)
	}
	if !got.Triggers.Logon.Enabled || got.Settings.ExecutionTimeLimit != "PT0S" || got.Principal.LogonType != "InteractiveToken" ||
		got.Settings.RestartOnFailure.Interval != "PT1M" || got.Version != "1.2" {
		t.Errorf("task: %+v; want at logon, no time limit, as the user, restarted on failure", got)
	}
	if !strings.Contains(text, "\r\n") {
		t.Error("task lines do not end in CRLF")
	}
}

func TestInstallService(t *testing.T) {
	home, userHome := t.TempDir(), t.TempDir()
	var out bytes.Buffer
	sc := &fakeSystemctl{}
	env := &cliEnv{stdout: &out, systemctl: sc.run}
	if err := env.installService(context.Background(), "darwin", "/usr/local/bin/baton", home, userHome); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(userHome, "Library", "LaunchAgents", serviceLabel+".plist")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("the launchd agent was not written: %v", err)
	}
	if !bytes.Equal(data, launchdPlist(serviceSpec{Exe: "/usr/local/bin/baton", Home: home, LogFile: filepath.Join(home, "baton.log")})) {
		t.Errorf("%s holds another plist:\n%s", p, data)
	}
	for _, w := range []string{"Wrote " + p, "launchctl bootstrap gui/$(id -u) " + p, "/usr/local/bin/baton --home " + home + " run"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output does not say %q:\n%s", w, out.String())
		}
	}
	out.Reset()
	if err := env.installService(context.Background(), "windows", `C:\baton\baton.exe`, home, userHome); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `schtasks /Create /TN `+serviceLabel+` /XML "`+home+`\baton-task.xml"`) {
		t.Errorf("output does not say how to register the task:\n%s", out.String())
	}
	out.Reset()
	if err := env.installService(context.Background(), "linux", "/usr/bin/baton", home, userHome); err != nil {
		t.Fatal(err)
	}
	p = filepath.Join(userHome, ".config", "systemd", "user", "baton.service")
	data, err = os.ReadFile(p)
	if err != nil {
		t.Fatalf("the systemd user unit was not written: %v", err)
	}
	if !bytes.Equal(data, systemdUserUnit(serviceSpec{Exe: "/usr/bin/baton", Home: home, LogFile: filepath.Join(home, "baton.log")})) {
		t.Errorf("%s holds another unit:\n%s", p, data)
	}
	for _, w := range []string{"Wrote " + p + ", enabled and started it", "loginctl enable-linger", "baton service remove --user", "systemctl --user disable --now baton.service"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output does not say %q:\n%s", w, out.String())
		}
	}
	// Only Linux's is started; the others print how.
	if want := []string{"--user daemon-reload", "--user enable --now baton.service"}; !slices.Equal(sc.calls, want) {
		t.Errorf("systemctl ran %q; want %q", sc.calls, want)
	}
	sc.fail = "--user enable"
	if err := env.installService(context.Background(), "linux", "/usr/bin/baton", home, userHome); err == nil || !strings.Contains(err.Error(), "wrote "+p+" but did not start it") {
		t.Errorf("install --user with a failing systemctl = %v; want it to say the unit was written and not started", err)
	}
	if err := env.installService(context.Background(), "freebsd", "/usr/bin/baton", home, userHome); !errors.Is(err, errNoUserService) {
		t.Errorf("installService(freebsd) = %v; want errNoUserService", err)
	}
}

// fakeSystemctl records the systemctl commands run, and fails those that
// begin with fail.
type fakeSystemctl struct {
	calls []string
	fail  string
}

func (f *fakeSystemctl) run(_ context.Context, args ...string) error {
	c := strings.Join(args, " ")
	f.calls = append(f.calls, c)
	if f.fail != "" && strings.HasPrefix(c, f.fail) {
		return errors.New("systemctl failed")
	}
	return nil
}

func TestInstallSystemService(t *testing.T) {
	dir := t.TempDir()
	sc := &fakeSystemctl{}
	uid := 1000
	var out bytes.Buffer
	env := &cliEnv{stdout: &out, systemctl: sc.run, euid: func() int { return uid }, systemUnitDir: dir}
	s := systemSpec{serviceSpec: serviceSpec{Exe: "/usr/bin/baton", Home: "/srv/baton"}, User: "baton", Group: "baton"}
	p := filepath.Join(dir, "baton.service")

	if err := env.installSystemService(context.Background(), "linux", s); !errors.Is(err, errNeedRoot) || !strings.Contains(err.Error(), "sudo") {
		t.Errorf("install as uid 1000 = %v; want errNeedRoot saying sudo", err)
	}
	if _, err := os.Stat(p); err == nil || len(sc.calls) != 0 {
		t.Errorf("install as uid 1000 wrote %s or ran systemctl %q", p, sc.calls)
	}
	if err := env.installSystemService(context.Background(), "darwin", s); !errors.Is(err, errNoSystemService) {
		t.Errorf("install on darwin = %v; want errNoSystemService", err)
	}

	uid = 0
	if err := env.installSystemService(context.Background(), "linux", s); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("the system unit was not written: %v", err)
	}
	if !bytes.Equal(data, systemdSystemUnit(s)) {
		t.Errorf("%s holds another unit:\n%s", p, data)
	}
	if want := []string{"daemon-reload", "enable --now baton.service"}; !slices.Equal(sc.calls, want) {
		t.Errorf("systemctl ran %q; want %q", sc.calls, want)
	}
	if !strings.Contains(out.String(), "Wrote "+p) {
		t.Errorf("output:\n%s", out.String())
	}

	sc.calls, sc.fail = nil, "enable"
	if err := env.installSystemService(context.Background(), "linux", s); err == nil || !strings.Contains(err.Error(), "systemctl failed") {
		t.Errorf("install with a failing systemctl = %v; want its error", err)
	}
}

func TestRemoveService(t *testing.T) {
	dir, userHome := t.TempDir(), t.TempDir()
	sc := &fakeSystemctl{}
	uid := 1000
	var out bytes.Buffer
	env := &cliEnv{stdout: &out, systemctl: sc.run, euid: func() int { return uid }, systemUnitDir: dir}
	ctx := context.Background()

	// The per-user unit: nothing to remove, then the one install wrote.
	if err := env.removeService(ctx, "linux", true, userHome); !errors.Is(err, errNoServiceInstalled) {
		t.Errorf("remove --user with no unit = %v; want errNoServiceInstalled", err)
	}
	if err := env.installService(context.Background(), "linux", "/usr/bin/baton", t.TempDir(), userHome); err != nil {
		t.Fatal(err)
	}
	sc.calls = nil
	up := filepath.Join(userHome, ".config", "systemd", "user", "baton.service")
	sc.fail = "--user disable"
	if err := env.removeService(ctx, "linux", true, userHome); err == nil {
		t.Error("remove --user with a failing systemctl succeeded")
	}
	if _, err := os.Stat(up); err != nil {
		t.Errorf("a failed remove deleted the unit: %v", err)
	}
	sc.calls, sc.fail = nil, ""
	if err := env.removeService(ctx, "linux", true, userHome); err != nil {
		t.Fatal(err)
	}
	if want := []string{"--user disable --now baton.service", "--user daemon-reload"}; !slices.Equal(sc.calls, want) {
		t.Errorf("systemctl ran %q; want %q", sc.calls, want)
	}
	if _, err := os.Stat(up); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("remove --user left %s: %v", up, err)
	}

	// The system unit: root alone.
	sp := filepath.Join(dir, "baton.service")
	if err := os.WriteFile(sp, []byte("[Unit]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sc.calls = nil
	if err := env.removeService(ctx, "linux", false, userHome); !errors.Is(err, errNeedRoot) {
		t.Errorf("remove as uid 1000 = %v; want errNeedRoot", err)
	}
	if _, err := os.Stat(sp); err != nil || len(sc.calls) != 0 {
		t.Errorf("remove as uid 1000 deleted the unit (%v) or ran systemctl %q", err, sc.calls)
	}
	uid = 0
	if err := env.removeService(ctx, "linux", false, userHome); err != nil {
		t.Fatal(err)
	}
	if want := []string{"disable --now baton.service", "daemon-reload"}; !slices.Equal(sc.calls, want) {
		t.Errorf("systemctl ran %q; want %q", sc.calls, want)
	}
	if _, err := os.Stat(sp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("remove left %s: %v", sp, err)
	}
	if err := env.removeService(ctx, "linux", false, userHome); !errors.Is(err, errNoServiceInstalled) {
		t.Errorf("a second remove = %v; want errNoServiceInstalled", err)
	}

	// Elsewhere: not built, with the commands to run by hand.
	if err := env.removeService(ctx, "windows", true, userHome); !errors.Is(err, errNoSystemService) || !strings.Contains(err.Error(), "schtasks /Delete") {
		t.Errorf("remove --user on windows = %v; want errNoSystemService with the schtasks command", err)
	}
	if err := env.removeService(ctx, "darwin", false, userHome); !errors.Is(err, errNoSystemService) {
		t.Errorf("remove on darwin = %v; want errNoSystemService", err)
	}
}
