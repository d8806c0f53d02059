package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/baton-sync/baton/internal/atomicfile"
)

// errNeedRoot: a system service is written, enabled and removed by root
// alone.
var errNeedRoot = errors.New("a system service needs root")

// errNoSystemService: 'service install' without --user and 'service
// remove' are built for systemd (Linux) only.
var errNoSystemService = errors.New("not built on this platform")

// errNoServiceInstalled: 'service remove' found no unit to remove.
var errNoServiceInstalled = errors.New("no service installed")

// defaultSystemUnitDir is where 'service install' writes the system unit.
const defaultSystemUnitDir = "/etc/systemd/system"

// defaultServerHome is the home of the system unit in contrib/systemd,
// the systemd state directory of a unit with StateDirectory=baton.
const defaultServerHome = "/var/lib/baton"

// systemSpec is what the system unit runs and as whom.
type systemSpec struct {
	serviceSpec
	User, Group string // who owns the home
}

// systemdSystemUnit is the hardened system unit of a server: 'baton
// run' of s.Home as s.User, started at boot and again if it fails
// (contrib/systemd/baton-server.service has the same settings). It may
// write its home alone: StateDirectory= is /var/lib/baton; a home
// elsewhere is added with ReadWritePaths=, and one under /home, /root or
// /run/user is bound into the otherwise empty home directories.
func systemdSystemUnit(s systemSpec) []byte {
	var b strings.Builder
	home := strings.NewReplacer("\n", " ", "\r", " ").Replace(s.Home)
	b.WriteString("# The baton server of " + home + ", written by 'baton service install'.\n")
	b.WriteString("[Unit]\nDescription=baton server (folder sync domain)\nWants=network-online.target\nAfter=network-online.target\n\n")
	b.WriteString("[Service]\nType=simple\nUser=" + systemdQuote(s.User) + "\nGroup=" + systemdQuote(s.Group) + "\nExecStart=")
	for i, a := range append([]string{s.Exe}, s.args()...) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(systemdQuote(a))
	}
	b.WriteString("\nRestart=on-failure\nRestartSec=5s\nTimeoutStopSec=30s\nLimitNOFILE=65536\n")
	b.WriteString("\n# Its files: the home (key, data files, hosted folders) and nothing else.\n")
	b.WriteString("StateDirectory=baton\nStateDirectoryMode=0700\nUMask=0077\nProtectSystem=strict\n")
	protectHome := "ProtectHome=yes\n"
	if filepath.Clean(s.Home) != defaultServerHome {
		q := systemdQuote(s.Home)
		if underUserHomes(s.Home) {
			protectHome = "ProtectHome=tmpfs\nBindPaths=" + q + "\n"
		} else {
			protectHome += "ReadWritePaths=" + q + "\n"
		}
	}
	b.WriteString(protectHome)
	b.WriteString("PrivateTmp=yes\nPrivateDevices=yes\n")
	b.WriteString("\n# No privileges to gain or keep.\n")
	b.WriteString("NoNewPrivileges=yes\nCapabilityBoundingSet=\nAmbientCapabilities=\nRestrictSUIDSGID=yes\nLockPersonality=yes\nMemoryDenyWriteExecute=yes\nRestrictRealtime=yes\nRestrictNamespaces=yes\n")
	b.WriteString("\n# Hands off the kernel and the rest of the system.\n")
	b.WriteString("ProtectKernelTunables=yes\nProtectKernelModules=yes\nProtectKernelLogs=yes\nProtectControlGroups=yes\nProtectClock=yes\nProtectHostname=yes\nProtectProc=invisible\nProcSubset=pid\nDevicePolicy=closed\n")
	b.WriteString("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\nSystemCallArchitectures=native\nSystemCallFilter=@system-service\nSystemCallErrorNumber=EPERM\n")
	b.WriteString("\n[Install]\nWantedBy=multi-user.target\n")
	return []byte(b.String())
}

// underUserHomes: p is in one of the directories ProtectHome= hides.
func underUserHomes(p string) bool {
	p = filepath.Clean(p)
	for _, d := range []string{"/home", "/root", "/run/user"} {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// runSystemctl runs systemctl with args through e.systemctl, or the real
// one.
func (e *cliEnv) runSystemctl(ctx context.Context, args ...string) error {
	if e.systemctl != nil {
		return e.systemctl(ctx, args...)
	}
	out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// isRoot: the process runs as root (e.euid stands for os.Geteuid).
func (e *cliEnv) isRoot() bool {
	if e.euid != nil {
		return e.euid() == 0
	}
	return os.Geteuid() == 0
}

// systemUnitPath is the system unit 'service install' writes.
func (e *cliEnv) systemUnitPath() string {
	dir := e.systemUnitDir
	if dir == "" {
		dir = defaultSystemUnitDir
	}
	return filepath.Join(dir, systemdUnitName)
}

// installSystemService writes the system unit of s on goos, enables and
// starts it.
func (e *cliEnv) installSystemService(ctx context.Context, goos string, s systemSpec) error {
	if goos != "linux" {
		return fmt.Errorf("service install: a system service is %w (%s): give --user, or start 'baton run' with the system's service manager", errNoSystemService, goos)
	}
	if !e.isRoot() {
		return fmt.Errorf("service install: %w: run it with sudo (the unit runs as %s, the home's owner), or give --user for a per-user service", errNeedRoot, s.User)
	}
	p := e.systemUnitPath()
	if err := atomicfile.WriteFile(p, systemdSystemUnit(s), 0o644); err != nil {
		return fmt.Errorf("writing the system unit: %w", err)
	}
	for _, args := range [][]string{{"daemon-reload"}, {"enable", "--now", systemdUnitName}} {
		if err := e.runSystemctl(ctx, args...); err != nil {
			return fmt.Errorf("starting the system unit %s: %w", p, err)
		}
	}
	fmt.Fprintf(e.stdout, "Wrote %s, enabled and started it: it runs 'baton --home %s run' as %s at boot.\nIts log: journalctl -u %s\nRemove it with: baton service remove\n", p, s.Home, s.User, systemdUnitName)
	return nil
}

// removeService stops, disables and deletes the unit 'service install'
// wrote: the per-user one (user, in userHome) or the system one.
func (e *cliEnv) removeService(ctx context.Context, goos string, user bool, userHome string) error {
	if goos != "linux" {
		if user {
			if f, err := userService(goos, serviceSpec{Home: e.homeFlag}, userHome); err == nil {
				return fmt.Errorf("service remove --user is %w (%s): remove it with: %s", errNoSystemService, goos, strings.Join(f.Stop, "; "))
			}
		}
		return fmt.Errorf("service remove is %w (%s)", errNoSystemService, goos)
	}
	p, systemctl := e.systemUnitPath(), func(args ...string) error { return e.runSystemctl(ctx, args...) }
	if user {
		p = systemdUser(serviceSpec{}, userHome).Path
		systemctl = func(args ...string) error { return e.runSystemctl(ctx, append([]string{"--user"}, args...)...) }
	} else if !e.isRoot() {
		return fmt.Errorf("service remove: %w: run it with sudo, or give --user for the per-user service", errNeedRoot)
	}
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("service remove: %w: %s does not exist", errNoServiceInstalled, p)
	}
	if err := systemctl("disable", "--now", systemdUnitName); err != nil {
		return fmt.Errorf("stopping the service: %w", err)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("removing the service: %w", err)
	}
	if err := systemctl("daemon-reload"); err != nil {
		return fmt.Errorf("reloading systemd after removing %s: %w", p, err)
	}
	fmt.Fprintf(e.stdout, "Stopped, disabled and removed %s.\n", p)
	return nil
}
