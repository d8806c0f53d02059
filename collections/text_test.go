package collections_test

import (
	"errors"
	"testing"

	"github.com/baton-sync/baton/collections"
	ct "github.com/baton-sync/baton/collections/collectionstest"
)

// Names that hosts show to users (a folder's, a device's) come from other
// hosts: a record whose name holds what a terminal would act on rather
// than show (control characters, escape sequences, C1 controls,
// bidirectional overrides) does not validate, so it is never stored or
// shown. Names in any script validate.
func TestRecordNamesArePrintable(t *testing.T) {
	folder := func(name string) collections.Folder {
		return collections.Folder{ID: "00000000000000aa", Name: name, Owner: "ann", Server: ct.ID("s2").String(),
			Members: map[string]collections.Right{"ann": collections.RightOwner}}
	}
	for _, name := range []string{"Photos", "Fotos ñ 写真", "ann's (2025)"} {
		if err := folder(name).Validate(); err != nil {
			t.Errorf("folder named %q: %v; want valid", name, err)
		}
		c := deviceCert("ann", "d1", "s2")
		c.Name = name
		if err := c.Validate(); err != nil {
			t.Errorf("device named %q: %v; want valid", name, err)
		}
	}
	for _, name := range []string{"a\x1b[2Jb", "csi\u009b31m", "bell\a", "two\nlines", "tab\there", "\u202eexe.txt", "zero\u200bwidth", "del\x7f"} {
		if err := folder(name).Validate(); !errors.Is(err, collections.ErrMalformed) {
			t.Errorf("folder named %q: %v; want ErrMalformed", name, err)
		}
		c := deviceCert("ann", "d1", "s2")
		c.Name = name
		if err := c.Validate(); !errors.Is(err, collections.ErrMalformed) {
			t.Errorf("device named %q: %v; want ErrMalformed", name, err)
		}
	}
}
