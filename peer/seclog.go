package peer

import (
	"strings"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections"
)

// logSecurityChange logs a user's removal or a device's revocation this
// host has just applied, with its source: the server that wrote it (the
// master for a removal, the user's home server for a revocation). The
// host where it was asked logs who asked (the control socket, the agent
// protocol); every other host logs it here, when the change reaches it.
func (d *driver) logSecurityChange(u collections.Update) {
	by := u.Author
	if id, err := lpeer.Decode(u.Author); err == nil {
		if name := d.hostName(id); name != "" {
			by = name + " (" + u.Author + ")"
		}
	}
	switch {
	case u.Collection == collections.Domain && strings.HasPrefix(u.Key, collections.UserPrefix):
		name := strings.TrimPrefix(u.Key, collections.UserPrefix)
		if u.Delete {
			d.log.Info("user removed (record deleted)", "user", name, "source", by)
			return
		}
		v, err := u.Decode()
		if err != nil {
			return
		}
		if usr, ok := v.(collections.User); ok && usr.Removed {
			d.log.Info("user removed", "user", usr.Name, "user_id", usr.ID, "successor", usr.Successor, "source", by)
		}
	case u.Collection == collections.Catalog && strings.HasPrefix(u.Key, collections.DevicePrefix) && !u.Delete:
		v, err := u.Decode()
		if err != nil {
			return
		}
		dev, ok := v.(collections.Device)
		if !ok || !dev.Revoked {
			return
		}
		user := ""
		if c, err := dev.Open(); err == nil {
			user = c.User
		}
		d.log.Info("device revoked", "device", strings.TrimPrefix(u.Key, collections.DevicePrefix), "user", user, "source", by)
	}
}
