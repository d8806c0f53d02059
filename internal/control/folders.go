package control

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/baton-sync/baton/internal/atomicfile"
)

// foldersFile is <home>/folders.toml: the folders an agent syncs, and where.
const foldersFile = "folders.toml"

// LocalFolder is one folder synced on this agent.
type LocalFolder struct {
	ID    string `toml:"id"`
	Name  string `toml:"name"`
	Owner string `toml:"owner"`
	Path  string `toml:"path"` // absolute
	// OutsideSymlinks: take other hosts' symlinks whose target is
	// absolute or leaves the folder ('folder accept --allow-outside-symlinks').
	OutsideSymlinks bool `toml:"outside_symlinks,omitempty"`
	// WindowsNames: keep to the names Windows can hold ('folder accept
	// --windows-names', or by hand in folders.toml; always so on Windows):
	// other members' entries named otherwise are neither created nor
	// deleted here.
	WindowsNames bool `toml:"windows_names,omitempty"`
}

type foldersDoc struct {
	Folders []LocalFolder `toml:"folder"`
}

const foldersHeader = `# baton folders synced on this agent: written by 'baton folder create',
# 'accept' and 'leave' (through the running daemon). path is the local directory;
# outside_symlinks = true takes other members' symlinks that point outside it;
# windows_names = true keeps to the names Windows can hold (always so on Windows).
`

// localFolders is the agent's folders.toml, guarded for the control API.
type localFolders struct {
	mu   sync.Mutex
	path string
}

func newLocalFolders(home string) *localFolders {
	return &localFolders{path: filepath.Join(home, foldersFile)}
}

// load reads the file; a missing one is empty.
func (l *localFolders) load() ([]LocalFolder, error) {
	data, err := os.ReadFile(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the synced folders: %w", err)
	}
	var doc foldersDoc
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", l.path, err)
	}
	return doc.Folders, nil
}

func (l *localFolders) save(list []LocalFolder) error {
	slices.SortFunc(list, func(a, b LocalFolder) int { return strings.Compare(a.Path, b.Path) })
	data, err := toml.Marshal(foldersDoc{Folders: list})
	if err != nil {
		return fmt.Errorf("encoding the synced folders: %w", err)
	}
	if err := atomicfile.WriteFile(l.path, append([]byte(foldersHeader), data...), 0o600); err != nil {
		return fmt.Errorf("saving the synced folders: %w", err)
	}
	return nil
}

// update changes the list under the lock and saves it if change returns
// true.
func (l *localFolders) update(change func(list []LocalFolder) ([]LocalFolder, error)) ([]LocalFolder, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	list, err := l.load()
	if err != nil {
		return nil, err
	}
	list, err = change(list)
	if err != nil {
		return nil, err
	}
	return list, l.save(list)
}

// SyncMap is list as the engine takes it: folder ID -> directory.
func SyncMap(list []LocalFolder) map[string]string {
	m := make(map[string]string, len(list))
	for _, f := range list {
		m[f.ID] = f.Path
	}
	return m
}

// SymlinkPolicy says which folders take other hosts' symlinks pointing
// outside the folder, and which keep to Windows' names: those recorded so
// in folders.toml. It is read by the sync engine at every apply and set
// when folders.toml changes.
type SymlinkPolicy struct {
	allowed      atomic.Pointer[map[string]bool]
	windowsNames atomic.Pointer[map[string]bool]
}

// set records the folders of list that allow such symlinks, and those that
// keep to Windows' names.
func (p *SymlinkPolicy) Set(list []LocalFolder) {
	m, w := map[string]bool{}, map[string]bool{}
	for _, f := range list {
		if f.OutsideSymlinks {
			m[f.ID] = true
		}
		if f.WindowsNames {
			w[f.ID] = true
		}
	}
	p.allowed.Store(&m)
	p.windowsNames.Store(&w)
}

// allows reports whether folder id takes such symlinks.
func (p *SymlinkPolicy) Allows(id string) bool {
	m := p.allowed.Load()
	return m != nil && (*m)[id]
}

// keepsWindowsNames reports whether folder id keeps to Windows' names.
func (p *SymlinkPolicy) KeepsWindowsNames(id string) bool {
	m := p.windowsNames.Load()
	return m != nil && (*m)[id]
}

// MakeFolderDir makes sure that path is a directory, making it (and its
// parents) when it is missing: what 'baton folder create' and 'folder
// accept', and the console's forms for them, do before they ask the daemon
// to sync a folder there.
func MakeFolderDir(path string) error {
	st, err := os.Stat(path)
	switch {
	case err == nil && !st.IsDir():
		return fmt.Errorf("%s is not a directory", path)
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(path, 0o755); err != nil {
			return fmt.Errorf("making the folder directory: %w", err)
		}
		return nil
	}
	return fmt.Errorf("folder path: %w", err)
}

// checkFolderPath checks that path, absolute, is a directory that does not
// overlap a folder already synced here (other than id) or the baton home.
func checkFolderPath(path, id, home string, list []LocalFolder) error {
	if !filepath.IsAbs(path) {
		return errInvalid("folder path %q is not absolute", path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return errInvalid("folder path: %v", err)
	}
	if !st.IsDir() {
		return errInvalid("%s is not a directory", path)
	}
	if within(path, home) || within(home, path) {
		return errConflict("%s overlaps the baton home %s", path, home)
	}
	for _, f := range list {
		if f.ID == id {
			continue
		}
		if within(path, f.Path) || within(f.Path, path) {
			return errConflict("%s overlaps %s, where folder %s (%s) is synced", path, f.Path, f.Name, f.ID)
		}
	}
	return nil
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// LoadFolders reads home's folders.toml: the folders an agent syncs. A
// missing file is empty.
func LoadFolders(home string) ([]LocalFolder, error) { return newLocalFolders(home).load() }

// SaveFolders writes list to home's folders.toml, sorted by path. Only
// while no daemon runs in home: a running one changes the file itself.
func SaveFolders(home string, list []LocalFolder) error { return newLocalFolders(home).save(list) }
