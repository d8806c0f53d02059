package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf16"
)

// serviceLabel names the per-user service on every system: the launchd
// label on macOS, the scheduled task on Windows.
const serviceLabel = "org.baton-sync.baton"

// errNoUserService: 'service install --user' knows no per-user service
// manager for the system.
var errNoUserService = errors.New("no per-user service for this system")

// serviceSpec is what a per-user service runs: 'baton --home HOME run'.
type serviceSpec struct {
	Exe            string // the baton executable, absolute
	Home           string // the baton home, absolute
	PassphraseFile string // --passphrase-file, if the key needs one
	LogFile        string // where the daemon's output goes (launchd)
}

// args are the arguments after the executable.
func (s serviceSpec) args() []string {
	a := []string{"--home", s.Home}
	if s.PassphraseFile != "" {
		a = append(a, "--passphrase-file", s.PassphraseFile)
	}
	return append(a, "run")
}

// serviceFile is a file 'service install' writes, and how to start what
// it describes.
type serviceFile struct {
	Path  string
	Data  []byte
	Start []string // commands that register and start it
	Stop  []string // and that stop and remove it
}

// userService returns the per-user service file for goos: a launchd agent
// in ~/Library/LaunchAgents on macOS, a scheduled task run at logon on
// Windows (its XML, in the home, for schtasks to register), a systemd user
// unit in ~/.config/systemd/user on Linux. userHome is the user's home
// directory (macOS, Linux).
func userService(goos string, s serviceSpec, userHome string) (serviceFile, error) {
	switch goos {
	case "darwin":
		p := filepath.Join(userHome, "Library", "LaunchAgents", serviceLabel+".plist")
		return serviceFile{
			Path:  p,
			Data:  launchdPlist(s),
			Start: []string{"launchctl bootstrap gui/$(id -u) " + shellQuote(p)},
			Stop:  []string{"launchctl bootout gui/$(id -u)/" + serviceLabel, "rm " + shellQuote(p)},
		}, nil
	case "windows":
		p := s.Home + `\baton-task.xml`
		data, err := scheduledTaskXML(s)
		if err != nil {
			return serviceFile{}, err
		}
		return serviceFile{
			Path:  p,
			Data:  data,
			Start: []string{`schtasks /Create /TN ` + serviceLabel + ` /XML "` + p + `"`, `schtasks /Run /TN ` + serviceLabel},
			Stop:  []string{`schtasks /End /TN ` + serviceLabel, `schtasks /Delete /TN ` + serviceLabel + ` /F`},
		}, nil
	case "linux":
		return systemdUser(s, userHome), nil
	}
	return serviceFile{}, fmt.Errorf("%w (%s): run 'baton run' from the desktop session's autostart", errNoUserService, goos)
}

// launchdPlist is a launchd agent that runs s at login and again if it
// exits with an error, its output appended to s.LogFile.
func launchdPlist(s serviceSpec) []byte {
	var b bytes.Buffer
	esc := func(v string) string {
		var e bytes.Buffer
		_ = xml.EscapeText(&e, []byte(v))
		return e.String()
	}
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>` + serviceLabel + `</string>
	<key>ProgramArguments</key>
	<array>
`)
	for _, a := range append([]string{s.Exe}, s.args()...) {
		b.WriteString("\t\t<string>" + esc(a) + "</string>\n")
	}
	b.WriteString(`	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
	</dict>
	<key>ProcessType</key>
	<string>Background</string>
	<key>StandardOutPath</key>
	<string>` + esc(s.LogFile) + `</string>
	<key>StandardErrorPath</key>
	<string>` + esc(s.LogFile) + `</string>
</dict>
</plist>
`)
	return b.Bytes()
}

// task is the part of Task Scheduler's schema (version 1.2) a per-user
// task at logon uses.
type task struct {
	XMLName  xml.Name `xml:"Task"`
	Version  string   `xml:"version,attr"`
	Xmlns    string   `xml:"xmlns,attr"`
	Desc     string   `xml:"RegistrationInfo>Description"`
	Triggers struct {
		Logon struct {
			Enabled bool `xml:"Enabled"`
		} `xml:"LogonTrigger"`
	} `xml:"Triggers"`
	Principal struct {
		ID        string `xml:"id,attr"`
		LogonType string `xml:"LogonType"`
		RunLevel  string `xml:"RunLevel"`
	} `xml:"Principals>Principal"`
	Settings struct {
		MultipleInstancesPolicy    string `xml:"MultipleInstancesPolicy"`
		DisallowStartIfOnBatteries bool   `xml:"DisallowStartIfOnBatteries"`
		StopIfGoingOnBatteries     bool   `xml:"StopIfGoingOnBatteries"`
		ExecutionTimeLimit         string `xml:"ExecutionTimeLimit"`
		RestartOnFailure           struct {
			Interval string `xml:"Interval"`
			Count    int    `xml:"Count"`
		} `xml:"RestartOnFailure"`
		Hidden bool `xml:"Hidden"`
	} `xml:"Settings"`
	Exec struct {
		Context   string `xml:"Context,attr"`
		Command   string `xml:"Exec>Command"`
		Arguments string `xml:"Exec>Arguments"`
	} `xml:"Actions"`
}

// scheduledTaskXML is a Task Scheduler task that runs s at the user's
// logon, without a time limit, restarted every minute if it fails, in
// UTF-16 with a byte order mark as schtasks /XML reads it.
func scheduledTaskXML(s serviceSpec) ([]byte, error) {
	var t task
	t.Version, t.Xmlns = "1.2", "http://schemas.microsoft.com/windows/2004/02/mit/task"
	t.Desc = "baton folder sync agent (baton run)"
	t.Triggers.Logon.Enabled = true
	t.Principal.ID, t.Principal.LogonType, t.Principal.RunLevel = "Author", "InteractiveToken", "LeastPrivilege"
	t.Settings.MultipleInstancesPolicy = "IgnoreNew"
	t.Settings.ExecutionTimeLimit = "PT0S"
	t.Settings.RestartOnFailure.Interval, t.Settings.RestartOnFailure.Count = "PT1M", 999
	t.Exec.Context = "Author"
	t.Exec.Command = s.Exe
	t.Exec.Arguments = windowsArgs(s.args())
	body, err := xml.MarshalIndent(t, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the scheduled task: %w", err)
	}
	text := `<?xml version="1.0" encoding="UTF-16"?>` + "\r\n" + strings.ReplaceAll(string(body), "\n", "\r\n") + "\r\n"
	out := []byte{0xff, 0xfe} // UTF-16LE byte order mark
	for _, u := range utf16.Encode([]rune(text)) {
		out = append(out, byte(u), byte(u>>8))
	}
	return out, nil
}

// windowsArgs joins args into a Windows command line, quoting as the C
// runtime (and Go's os.Args) parses it.
func windowsArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = windowsQuote(a)
	}
	return strings.Join(q, " ")
}

// windowsQuote quotes a for a Windows command line: in double quotes if it
// holds a space, a tab or a quote (or is empty), a quote escaped with a
// backslash, and the backslashes before a quote or the closing quote
// doubled.
func windowsQuote(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t\"") {
		return a
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for _, r := range a {
		switch r {
		case '\\':
			slashes++
			continue
		case '"':
			b.WriteString(strings.Repeat(`\`, 2*slashes+1))
		default:
			b.WriteString(strings.Repeat(`\`, slashes))
		}
		slashes = 0
		b.WriteRune(r)
	}
	b.WriteString(strings.Repeat(`\`, 2*slashes))
	b.WriteByte('"')
	return b.String()
}
