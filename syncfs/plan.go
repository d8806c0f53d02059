package syncfs

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ActionKind is what an Action does.
type ActionKind uint8

// The kinds of Action.
const (
	// ActSkip changes nothing; Reason says why the remote entry is not taken.
	ActSkip ActionKind = iota + 1
	// ActRecord changes nothing on disk; the local index records File
	// (a newer version of identical content, or a merged version).
	ActRecord
	// ActDelete removes Name (a file, a symlink or an empty directory) and
	// records the tombstone File.
	ActDelete
	// ActMkDir creates the directory Name with File.Mode.
	ActMkDir
	// ActFetch writes File to Name: the Copy blocks from local files, the
	// Need blocks from peers, every block verified.
	ActFetch
	// ActSymlink creates or replaces Name with a symlink to
	// File.SymlinkTarget.
	ActSymlink
	// ActRename moves the local file From to Name (same content), then sets
	// File's metadata, and records Also, the tombstone of From.
	ActRename
	// ActMeta sets File's mode and mtime on Name without rewriting it.
	ActMeta
	// ActConflict keeps the local entry at Name as ConflictName (recorded as
	// Also), then writes File to Name as ActFetch, ActSymlink or ActMkDir
	// would.
	ActConflict
)

func (k ActionKind) String() string {
	switch k {
	case ActSkip:
		return "skip"
	case ActRecord:
		return "record"
	case ActDelete:
		return "delete"
	case ActMkDir:
		return "mkdir"
	case ActFetch:
		return "fetch"
	case ActSymlink:
		return "symlink"
	case ActRename:
		return "rename"
	case ActMeta:
		return "meta"
	case ActConflict:
		return "conflict"
	}
	return fmt.Sprintf("ActionKind(%d)", uint8(k))
}

// BlockCopy is a block of the new file that a local file already holds.
type BlockCopy struct {
	Block      Block  // where it goes in the new file, and its hash
	From       string // the local file holding it
	FromOffset int64
}

// Action is one step of a sync plan.
type Action struct {
	Kind         ActionKind
	Name         string
	File         FileInfo    // the entry Name holds afterwards (Delete: the tombstone)
	From         string      // Rename: the local file moved to Name
	ConflictName string      // Conflict: where the local entry at Name is kept
	Also         *FileInfo   // Conflict: the entry recorded for ConflictName; Rename: the tombstone recorded for From; Delete of a directory: the entry recorded if it holds entries not synced here (kept). A pointer: most actions have none, and a large plan holds many actions
	Need         []Block     // Fetch, Conflict: blocks to get from peers
	Copy         []BlockCopy // Fetch, Conflict: blocks to copy from local files
	Reason       string      // Skip, Record and conflicts: why
}

func (a Action) String() string {
	s := a.Kind.String() + " " + a.Name
	if a.From != "" {
		s += " from " + a.From
	}
	if a.ConflictName != "" {
		s += " keeping " + a.ConflictName
	}
	if a.Reason != "" {
		s += " (" + a.Reason + ")"
	}
	return s
}

// Plan decides what this device (self) does to make its folder, described
// by local, take the changes in remote. It is pure: it reads nothing and
// its result depends only on its arguments.
//
// Remote entries newer than local ones are taken: created, rewritten (only
// the blocks the device lacks are fetched), re-moded, deleted (tombstones),
// or moved (a deleted file and a new one with the same content become a
// Rename). Equal or older entries, and local entries the remote does not
// know, are left alone: they are this device's to announce. Concurrent
// changes are resolved the same way on every device (see the winner rule on
// wins): the loser's content is kept as a conflict copy named by
// ConflictName from its own mtime and device, a live entry always beats a
// deletion, and a directory that still holds live entries is never deleted.
// Names that would clash with another on a case-insensitive or normalizing
// filesystem are skipped, on every device, so no file overwrites another.
//
// Actions are ordered so an applier can run them in sequence: deletions of
// files that become directories, directories (parents first), then
// renames, fetches, symlinks, metadata and records by name, then deletions
// (contents before their directory), then entries that replace a deleted
// directory or a name differing only in case. The snapshots' names must be
// valid (OpenIndex checks them); remote entries that are not are ignored,
// as are names of the applier's temporary files (TempPrefix), which no
// scanner records.
//
// A remote symlink whose target is absolute or leaves the folder
// (CheckSymlinkTarget) is skipped with the reason, and the local entry at
// its name is kept, unless opts say otherwise (PlanWith): a member cannot
// plant a link to /etc or ../.. on the other devices. Symlinks made on this
// device are its own and are not looked at.
func Plan(local Entries, remote Snapshot, self string) []Action {
	return PlanWith(local, remote, self, PlanOptions{})
}

// PlanOptions adjust Plan. The zero value is the default.
type PlanOptions struct {
	// OutsideSymlinks takes remote symlinks whose target is absolute or
	// leaves the folder, as any other entry: for teams that trust every
	// member.
	OutsideSymlinks bool
	// Names says which names the folder's file system cannot hold
	// (NativeNameRules): an action that would create, change or delete
	// such a name locally is skipped with the reason, and the rest of the
	// folder syncs.
	Names NameRules
	// NoSymlinks, if set, says why this device cannot create symlinks
	// (SymlinkProblem: on Windows, an account without the privilege):
	// every action that would create one is skipped with it, and the local
	// entry the symlink was to replace stays. It stops nothing else.
	NoSymlinks string
}

// PlanWith is Plan with options.
func PlanWith(local Entries, remote Snapshot, self string, opts PlanOptions) []Action {
	p := &planner{local: local, remote: remote, self: self}
	// Sorting the names, not the entries, keeps a large remote cheap.
	for _, n := range slices.Sorted(maps.Keys(remote)) {
		r := remote[n]
		if r.Validate() != nil || inTemp(n) {
			continue
		}
		p.decide(r)
	}
	if !opts.OutsideSymlinks || opts.NoSymlinks != "" {
		p.refuseSymlinks(opts.NoSymlinks)
	}
	p.refuseUnportable(opts.Names)
	p.detectRenames()
	p.keepNonEmptyDirs()
	p.keepUnknownContent()
	p.checkClashes()
	p.fillBlocks()
	return p.ordered()
}

// Phases of a plan, in the order an applier runs them.
const (
	phaseEarlyDelete = iota + 1
	phaseDirs
	phaseMain
	phaseDelete
	phaseLate
)

type step struct {
	Action
	phase int
	drop  bool
}

type planner struct {
	local  Entries
	remote Snapshot
	self   string
	steps  []*step
}

func (p *planner) add(kind ActionKind, phase int, f FileInfo, reason string) *step {
	s := &step{Action: Action{Kind: kind, Name: f.Name, File: f, Reason: reason}, phase: phase}
	p.steps = append(p.steps, s)
	return s
}

// create adds the step that makes f exist where nothing is.
func (p *planner) create(f FileInfo, phase int, reason string) *step {
	switch f.Type {
	case TypeDir:
		if phase == phaseMain {
			phase = phaseDirs
		}
		return p.add(ActMkDir, phase, f, reason)
	case TypeSymlink:
		return p.add(ActSymlink, phase, f, reason)
	}
	return p.add(ActFetch, phase, f, reason)
}

// copyOf returns f as a new local entry called name, authored by self.
func (p *planner) copyOf(f FileInfo, name string) FileInfo {
	f.Name = name
	f.Version = Vector{}.Update(p.self)
	return f
}

// taken reports whether name is used in either snapshot by a live entry.
func (p *planner) taken(name string) bool {
	l, okL := p.local.Get(name)
	r, okR := p.remote[name]
	return okL && !l.Deleted || okR && !r.Deleted
}

func (p *planner) decide(r FileInfo) {
	l, ok := p.local.Get(r.Name)
	if !ok {
		if !r.Deleted {
			p.create(r, phaseMain, "")
		}
		return
	}
	switch r.Version.Compare(l.Version) {
	case Equal, Lesser:
		return
	case Greater:
		p.take(l, r, "")
		return
	}
	// Concurrent.
	merged := r
	merged.Version = r.Version.Merge(l.Version)
	if l.SameContent(r) {
		if !wins(r, l) {
			merged = l
			merged.Version = r.Version.Merge(l.Version)
		}
		if !l.Deleted && !merged.SameMetadata(l) {
			p.add(ActMeta, phaseMain, merged, "concurrent metadata change")
		} else {
			p.add(ActRecord, phaseMain, merged, "concurrent identical change")
		}
		return
	}
	if wins(r, l) {
		if l.Deleted {
			p.create(merged, phaseMain, "concurrent change wins over deletion")
			return
		}
		// The remote version wins: keep ours beside it.
		cn := conflictCopyName(l, p.taken)
		s := p.create(merged, phaseMain, "conflict: remote version wins")
		s.Kind = ActConflict
		s.ConflictName = cn
		s.Also = ptr(p.copyOf(l, cn))
		return
	}
	// Our version wins: record the merged version and keep the remote one
	// beside ours.
	keep := l
	keep.Version = r.Version.Merge(l.Version)
	if r.Deleted {
		p.add(ActRecord, phaseMain, keep, "local change wins over concurrent deletion")
		return
	}
	p.create(p.copyOf(r, conflictCopyName(r, p.taken)), phaseMain, "conflict: local version wins")
	p.add(ActRecord, phaseMain, keep, "conflict: local version wins")
}

// take replaces the local entry l with the newer remote entry r.
func (p *planner) take(l, r FileInfo, reason string) {
	switch {
	case r.Deleted && l.Deleted:
		p.add(ActRecord, phaseMain, r, reason)
	case r.Deleted:
		p.add(ActDelete, phaseDelete, r, reason)
	case l.Deleted:
		p.create(r, phaseMain, reason)
	case l.Type != r.Type && r.Type == TypeDir:
		p.add(ActDelete, phaseEarlyDelete, tombstone(l, r.Version), "replaced by a directory")
		p.create(r, phaseDirs, reason)
	case l.Type != r.Type && l.Type == TypeDir:
		p.add(ActDelete, phaseDelete, tombstone(l, r.Version), "directory replaced by a "+r.Type.String())
		p.create(r, phaseLate, reason)
	case l.SameContent(r) && l.SameMetadata(r):
		p.add(ActRecord, phaseMain, r, reason)
	case l.SameContent(r):
		p.add(ActMeta, phaseMain, r, reason)
	default:
		p.create(r, phaseMain, reason)
	}
}

// tombstone returns the deletion of l at version v.
func tombstone(l FileInfo, v Vector) FileInfo {
	return FileInfo{Name: l.Name, Type: l.Type, Deleted: true, ModTime: l.ModTime, Version: v}
}

// refuseSymlinks skips the creation of symlinks that point outside the
// folder, or of every symlink if none says why none can be made, and the
// deletion of the local entry such a symlink was to replace.
func (p *planner) refuseSymlinks(none string) {
	refused := map[string]bool{}
	for _, s := range p.steps {
		if !s.drop && refuseSymlink(&s.Action, none) {
			s.phase = phaseMain
			refused[s.Name] = true
		}
	}
	if len(refused) == 0 {
		return
	}
	for _, s := range p.steps {
		if s.Kind == ActDelete && refused[s.Name] {
			s.drop = true
		}
	}
}

// SkipOutsideSymlinks turns the actions of a list that create a symlink
// pointing outside the folder (CheckSymlinkTarget) into skips, as Plan
// does, for lists of actions not made by Plan; a deletion of the name of
// such a symlink in the list is dropped, so the local entry stays.
func SkipOutsideSymlinks(actions []Action) []Action {
	return SkipSymlinks(actions, "")
}

// SkipSymlinks is SkipOutsideSymlinks, skipping every symlink, with the
// reason none, if none is set (PlanOptions.NoSymlinks).
func SkipSymlinks(actions []Action, none string) []Action {
	refused := map[string]bool{}
	for i := range actions {
		if refuseSymlink(&actions[i], none) {
			refused[actions[i].Name] = true
		}
	}
	if len(refused) == 0 {
		return actions
	}
	return slices.DeleteFunc(actions, func(a Action) bool { return a.Kind == ActDelete && refused[a.Name] })
}

// refuseSymlink turns a, if it creates a symlink pointing outside the
// folder, or any symlink if none is set, into a skip that says why, and
// reports whether it did.
func refuseSymlink(a *Action, none string) bool {
	if a.Kind != ActSymlink && a.Kind != ActConflict || a.File.Type != TypeSymlink || a.File.Deleted {
		return false
	}
	if none != "" {
		*a = Action{Kind: ActSkip, Name: a.Name, File: a.File, Reason: none}
		return true
	}
	err := CheckSymlinkTarget(a.Name, a.File.SymlinkTarget)
	if err == nil {
		return false
	}
	*a = Action{Kind: ActSkip, Name: a.Name, File: a.File, Reason: err.Error()}
	return true
}

// refuseUnportable skips every action that would touch a name the
// folder's file system cannot hold (rules): it is neither created,
// changed nor deleted here. A record changes nothing on disk and stays.
// It runs before detectRenames, so no move starts from or ends at such a
// name.
func (p *planner) refuseUnportable(rules NameRules) {
	if rules == (NameRules{}) {
		return
	}
	for _, s := range p.steps {
		if !s.drop && refuseUnportable(&s.Action, rules) {
			s.phase = phaseMain
		}
	}
}

// SkipUnportableNames turns the actions of a list that touch a name the
// folder's file system cannot hold (rules) into skips, as Plan does, for
// lists of actions not made by Plan.
func SkipUnportableNames(actions []Action, rules NameRules) []Action {
	if rules == (NameRules{}) {
		return actions
	}
	for i := range actions {
		refuseUnportable(&actions[i], rules)
	}
	return actions
}

// refuseUnportable turns a, unless a record or a skip, into a skip that
// says why if a name it touches (Name, the source of a move, a conflict
// copy's name) breaks rules, and reports whether it did.
func refuseUnportable(a *Action, rules NameRules) bool {
	if a.Kind == ActRecord || a.Kind == ActSkip {
		return false
	}
	for _, n := range []string{a.Name, a.From, a.ConflictName} {
		if n == "" {
			continue
		}
		if err := rules.Check(n); err != nil {
			*a = Action{Kind: ActSkip, Name: a.Name, File: a.File, Reason: err.Error()}
			return true
		}
	}
	return false
}

// detectRenames turns a deletion of a local file plus a fetch of a new file
// with the same content into a move.
func (p *planner) detectRenames() {
	byHash := map[Hash][]*step{}
	for _, s := range p.steps {
		l, ok := p.local.Get(s.Name)
		if s.Kind == ActDelete && s.phase == phaseDelete && ok && !l.Deleted && l.Type == TypeFile && l.Size > 0 {
			byHash[l.FileHash] = append(byHash[l.FileHash], s)
		}
	}
	if len(byHash) == 0 {
		return
	}
	for _, s := range p.steps {
		if s.Kind != ActFetch || s.phase != phaseMain || s.Reason != "" {
			continue
		}
		if l, ok := p.local.Get(s.Name); ok && !l.Deleted {
			continue
		}
		cands := byHash[s.File.FileHash]
		for len(cands) > 0 && cands[0].drop {
			cands = cands[1:]
		}
		if len(cands) == 0 || cands[0].Name == s.Name {
			continue
		}
		del := cands[0]
		byHash[s.File.FileHash] = cands[1:]
		del.drop = true
		s.Kind = ActRename
		s.From = del.Name
		s.Also = ptr(del.File)
	}
}

// keepNonEmptyDirs cancels deletions of directories that will still hold
// live entries, deepest first, and records them as changed here so peers
// bring them back. A directory that was to become a file keeps the file as
// a conflict copy instead.
func (p *planner) keepNonEmptyDirs() {
	var dels []*step
	for _, s := range p.steps {
		if l, ok := p.local.Get(s.Name); !s.drop && s.Kind == ActDelete && ok && l.Type == TypeDir && !l.Deleted {
			dels = append(dels, s)
		}
	}
	if len(dels) == 0 {
		return
	}
	// Only the entries under a directory to delete can keep it: the
	// others are not held, so that a plan costs what it changes, not the
	// whole local index.
	deleting := make(map[string]bool, len(dels))
	for _, d := range dels {
		deleting[d.Name] = true
	}
	exists := map[string]bool{}
	for n, l := range p.local.All() {
		if !l.Deleted && underAny(n, deleting) {
			exists[n] = true
		}
	}
	for _, s := range p.steps {
		if s.drop {
			continue
		}
		switch s.Kind {
		case ActDelete:
			delete(exists, s.Name)
		case ActRename:
			delete(exists, s.From)
			exists[s.Name] = true
		case ActMkDir, ActFetch, ActSymlink, ActConflict:
			exists[s.Name] = true
		}
	}
	slices.SortFunc(dels, func(a, b *step) int { return strings.Compare(b.Name, a.Name) })
	for _, d := range dels {
		prefix := d.Name + "/"
		busy := false
		for n := range exists {
			if strings.HasPrefix(n, prefix) {
				busy = true
				break
			}
		}
		if !busy {
			continue
		}
		exists[d.Name] = true
		d.Kind, d.phase, d.File, d.Reason = ActRecord, phaseMain, p.keptDir(d.Name, d.File.Version), "directory not empty: kept"
		for _, s := range p.steps {
			if !s.drop && s.phase == phaseLate && s.Name == d.Name {
				cn := conflictCopyName(s.File, p.taken)
				s.File = p.copyOf(s.File, cn)
				s.Name, s.phase = cn, phaseMain
				s.Reason = "conflict: a non-empty directory holds the name"
			}
		}
	}
}

// underAny reports whether a directory above name is in dirs.
func underAny(name string, dirs map[string]bool) bool {
	for i := strings.LastIndexByte(name, '/'); i > 0; i = strings.LastIndexByte(name[:i], '/') {
		if dirs[name[:i]] {
			return true
		}
	}
	return false
}

// keptDir returns the local directory name as recorded when its deletion
// at version v is refused: a version that supersedes v, made here, so
// that peers bring the directory back.
func (p *planner) keptDir(name string, v Vector) FileInfo {
	l, _ := p.local.Get(name)
	l.Version = v.Merge(l.Version).Update(p.self)
	return l
}

// keepUnknownContent gives every deletion of a directory the entry to
// record instead (Also) if the directory turns out to hold entries no
// snapshot knows of (not scanned yet, or ignored): the applier keeps the
// directory then, as a conflict, rather than delete what is not synced.
func (p *planner) keepUnknownContent() {
	for _, s := range p.steps {
		if l, ok := p.local.Get(s.Name); !s.drop && s.Kind == ActDelete && ok && !l.Deleted && l.Type == TypeDir {
			s.Also = ptr(p.keptDir(s.Name, s.File.Version))
		}
	}
}

func isCreate(k ActionKind) bool {
	return k == ActMkDir || k == ActFetch || k == ActSymlink || k == ActRename
}

// checkClashes skips new names whose parent will not be a directory, that
// clash, by case or Unicode normalization, with a name that stays or with
// an earlier new name, and everything under a skipped name. New names that
// clash only with names this plan removes are moved after the removals.
func (p *planner) checkClashes() {
	created := map[string]bool{}
	removed := map[string]bool{} // canonical forms of names removed
	gone := map[string]bool{}    // local names removed
	newDirs := map[string]bool{}
	for _, s := range p.steps {
		if s.drop {
			continue
		}
		switch {
		case s.Kind == ActDelete:
			gone[s.Name] = true
			if s.phase == phaseDelete {
				removed[Canonical(s.Name)] = true
			}
		case s.Kind == ActRename:
			gone[s.From] = true
			removed[Canonical(s.From)] = true
		}
		if isCreate(s.Kind) {
			if l, ok := p.local.Get(s.Name); !ok || l.Deleted || s.phase == phaseLate || s.phase == phaseDirs && l.Type != TypeDir {
				created[s.Name] = true
			}
		}
		if s.File.Type == TypeDir && (s.Kind == ActMkDir || s.Kind == ActConflict) {
			newDirs[s.Name] = true
		}
	}
	if len(created) == 0 {
		return
	}
	isDir := func(name string) bool {
		if name == "" || newDirs[name] {
			return true
		}
		l, ok := p.local.Get(name)
		return ok && !l.Deleted && l.Type == TypeDir && !gone[name]
	}
	// A local name can clash only with a new name of its canonical form:
	// the index holds those alone, not the whole local index.
	wanted := make(map[string]bool, len(created))
	for n := range created {
		wanted[Canonical(n)] = true
	}
	idx := NewClashIndex()
	if t := indexedLocal(p.local); t != nil {
		// Looked up, not walked: a Local held on disk.
		var forms []string
		for c := range wanted {
			if !removed[c] {
				forms = append(forms, c)
			}
		}
		slices.Sort(forms)
		for _, names := range t.sameCanonical(forms) {
			for _, n := range names {
				if l, ok := p.local.Get(n); ok && !l.Deleted && !created[n] {
					idx.Add(n)
				}
			}
		}
	} else {
		for n, l := range p.local.All() {
			if l.Deleted || created[n] {
				continue
			}
			if c := Canonical(n); wanted[c] && !removed[c] {
				idx.Add(n)
			}
		}
	}
	var creates []*step
	for _, s := range p.steps {
		if !s.drop && isCreate(s.Kind) && created[s.Name] {
			creates = append(creates, s)
		}
	}
	slices.SortFunc(creates, func(a, b *step) int { return strings.Compare(a.Name, b.Name) })
	skipped := map[string]bool{}
	late := map[string]bool{}
	for _, s := range creates {
		parent := parentDir(s.Name)
		if skipped[parent] {
			s.Reason = "parent directory skipped"
		} else if !isDir(parent) {
			s.Reason = "parent is not a directory here"
		} else if prev, ok := idx.Add(s.Name); !ok {
			s.Reason = fmt.Sprintf("name clashes with %q on case-insensitive or normalizing filesystems", prev)
		} else {
			if s.Kind != ActRename && (late[parent] || removed[Canonical(s.Name)]) {
				s.phase = phaseLate
			}
			if s.phase == phaseLate {
				late[s.Name] = true
			}
			continue
		}
		skipped[s.Name] = true
		delete(newDirs, s.Name)
		if s.Kind == ActRename {
			// Keep the source rather than delete it for a move we skip.
			s.From = ""
			s.Also = nil
		}
		s.Kind, s.phase, s.Need, s.Copy = ActSkip, phaseMain, nil, nil
	}
}

// fillBlocks lists, for each fetch, the blocks a local file already holds
// and the blocks to get from peers. Only files the plan leaves in place, and
// the file being replaced, are used as sources.
func (p *planner) fillBlocks() {
	touched := map[string]bool{}
	for _, s := range p.steps {
		if s.drop {
			continue
		}
		switch s.Kind {
		case ActDelete, ActFetch, ActSymlink, ActConflict, ActRename:
			touched[s.Name] = true
		}
		if s.From != "" {
			touched[s.From] = true
		}
	}
	// The blocks the fetches need, each taken from the first file by name
	// that holds it (and there at its first offset), so that the plan
	// does not depend on map order. Only files holding needed blocks are
	// looked at closely: no sorting of the whole local index. A block is
	// known by its hash and size: the applier reads as many bytes as the
	// remote entry says to verify a copy, so a remote block is copied only
	// from a local block of its size.
	type key = sizedBlock
	type src struct {
		name string
		off  int64
	}
	have := map[key]src{}
	for _, s := range p.steps {
		if s.drop || s.Kind != ActFetch && s.Kind != ActConflict || s.File.Type != TypeFile {
			continue
		}
		for _, b := range s.File.Blocks {
			have[key{b.Hash, b.Size}] = src{}
		}
	}
	if len(have) == 0 {
		return
	}
	if t := indexedLocal(p.local); t != nil {
		// Looked up, not walked: a Local held on disk.
		want := make(map[key]bool, len(have))
		for k := range have {
			want[k] = true
		}
		t.blockHolders(want, touched, func(k key, name string, off int64) {
			if h := have[k]; h.name == "" || name < h.name {
				have[k] = src{name, off}
			}
		})
	} else {
		for _, l := range p.local.All() {
			if l.Deleted || l.Type != TypeFile || touched[l.Name] {
				continue
			}
			for _, b := range l.Blocks {
				k := key{b.Hash, b.Size}
				if h, ok := have[k]; ok && (h.name == "" || l.Name < h.name) {
					have[k] = src{l.Name, b.Offset}
				}
			}
		}
	}
	for _, s := range p.steps {
		if s.drop || s.Kind != ActFetch && s.Kind != ActConflict || s.File.Type != TypeFile {
			continue
		}
		own := map[key]int64{}
		if l, ok := p.local.Get(s.Name); ok && !l.Deleted && l.Type == TypeFile {
			for _, b := range l.Blocks {
				if _, dup := own[key{b.Hash, b.Size}]; !dup {
					own[key{b.Hash, b.Size}] = b.Offset
				}
			}
		}
		for _, b := range s.File.Blocks {
			k := key{b.Hash, b.Size}
			if off, ok := own[k]; ok {
				s.Copy = append(s.Copy, BlockCopy{Block: b, From: s.Name, FromOffset: off})
			} else if h := have[k]; h.name != "" {
				s.Copy = append(s.Copy, BlockCopy{Block: b, From: h.name, FromOffset: h.off})
			} else {
				s.Need = append(s.Need, b)
			}
		}
	}
}

func (p *planner) ordered() []Action {
	steps := slices.DeleteFunc(slices.Clone(p.steps), func(s *step) bool { return s.drop })
	slices.SortStableFunc(steps, func(a, b *step) int {
		if c := cmp.Compare(a.phase, b.phase); c != 0 {
			return c
		}
		if a.phase == phaseDelete {
			return strings.Compare(b.Name, a.Name)
		}
		return strings.Compare(a.Name, b.Name)
	})
	out := make([]Action, len(steps))
	for i, s := range steps {
		out[i] = s.Action
	}
	return out
}

// ptr returns a pointer to a copy of f.
func ptr(f FileInfo) *FileInfo { return &f }

// alsoOf returns a's Also, and an error naming what lacks it if it has
// none.
func alsoOf(a Action, what string) (FileInfo, error) {
	if a.Also == nil {
		return FileInfo{}, fmt.Errorf("%w: %s of %q without the entry to record for %s", ErrBadIndex, a.Kind, a.Name, what)
	}
	return *a.Also, nil
}
