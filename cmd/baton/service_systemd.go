package main

import (
	"path/filepath"
	"strings"
)

// systemdUnitName is the per-user systemd unit 'service install --user'
// writes on Linux.
const systemdUnitName = "baton.service"

// systemdUser is the per-user systemd unit for s in
// ~/.config/systemd/user, and the systemctl commands that start and
// remove it.
func systemdUser(s serviceSpec, userHome string) serviceFile {
	p := filepath.Join(userHome, ".config", "systemd", "user", systemdUnitName)
	return serviceFile{
		Path:  p,
		Data:  systemdUserUnit(s),
		Start: []string{"systemctl --user daemon-reload", "systemctl --user enable --now " + systemdUnitName, "loginctl enable-linger \"$USER\"   # to run it also while you are logged out"},
		Stop:  []string{"systemctl --user disable --now " + systemdUnitName, "rm " + shellQuote(p), "systemctl --user daemon-reload"},
	}
}

// systemdUserHardening are the sandboxing settings of the agent's user
// unit (contrib/systemd/baton-agent.service has the same). They need no
// user namespace, which a user unit's PrivateTmp=, ProtectSystem= and the
// like do and some distributions refuse (the unit would not start);
// ProtectHome= would hide the folders it syncs.
var systemdUserHardening = []string{
	"UMask=0077",
	"NoNewPrivileges=yes",
	"LockPersonality=yes",
	"MemoryDenyWriteExecute=yes",
	"RestrictRealtime=yes",
	"RestrictSUIDSGID=yes",
	"SystemCallArchitectures=native",
}

// systemdUserUnit is a systemd user unit that runs s at login and again
// if it fails; its output goes to the journal.
func systemdUserUnit(s serviceSpec) []byte {
	var b strings.Builder
	home := strings.NewReplacer("\n", " ", "\r", " ").Replace(s.Home)
	b.WriteString("# The baton agent of " + home + ", written by 'baton service install --user'.\n")
	b.WriteString("[Unit]\nDescription=baton agent (" + strings.ReplaceAll(home, "%", "%%") + ")\n\n")
	b.WriteString("[Service]\nType=simple\nExecStart=")
	for i, a := range append([]string{s.Exe}, s.args()...) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(systemdQuote(a))
	}
	b.WriteString("\nRestart=on-failure\nRestartSec=5s\nTimeoutStopSec=30s\n")
	for _, h := range systemdUserHardening {
		b.WriteString(h + "\n")
	}
	b.WriteString("\n[Install]\nWantedBy=default.target\n")
	return []byte(b.String())
}

// systemdQuote is a as one word of a unit's command line: specifiers (%)
// and variables ($) doubled, quoted when it holds anything else than
// letters, digits and /._-+:@=,.
func systemdQuote(a string) string {
	a = strings.ReplaceAll(a, "%", "%%")
	a = strings.ReplaceAll(a, "$", "$$")
	if a != "" && strings.IndexFunc(a, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@=,%$", r))
	}) < 0 {
		return a
	}
	a = strings.ReplaceAll(a, `\`, `\\`)
	a = strings.ReplaceAll(a, `"`, `\"`)
	a = strings.ReplaceAll(a, "\n", `\n`)
	a = strings.ReplaceAll(a, "\r", `\r`)
	return `"` + a + `"`
}
