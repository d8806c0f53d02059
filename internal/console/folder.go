package console

// A folder's page: its state, its history with restore buttons, and its
// conflict copies with both versions to open.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/syncfs"
)

// Limits of a folder's page.
const (
	// maxHistoryShown is how many versions the page lists, newest first.
	maxHistoryShown = 200
	// maxConflictsShown is how many conflict copies the page lists.
	maxConflictsShown = 100
	// maxConflictScan bounds the entries looked at to find them.
	maxConflictScan = 200000
)

// conflictMarker is what syncfs puts in a conflict copy's name
// (NAME.sync-conflict-YYYYMMDD-HHMMSS-DEVICE.EXT).
const conflictMarker = ".sync-conflict-"

// conflictPair is a conflict copy and the file it is a copy of.
type conflictPair struct {
	Copy     string // slash-separated, relative to the folder's root
	Original string
	// OriginalHere: the original is a file in the folder now.
	OriginalHere bool
	Size         int64
	ModTime      time.Time
}

// conflictOriginal returns the name of the file whose conflict copy name
// is: the marker, time and device taken out, the extension kept. It is
// pure.
func conflictOriginal(name string) (string, bool) {
	if !syncfs.IsConflictCopy(name) {
		return "", false
	}
	dir, base := path.Split(name)
	i := strings.Index(base, conflictMarker)
	rest := base[i+len(conflictMarker):]
	ext := ""
	if j := strings.IndexByte(rest, '.'); j >= 0 {
		ext = rest[j:]
	}
	return dir + base[:i] + ext, true
}

// findConflicts lists the conflict copies among the regular files of
// fsys, by name, at most limit of them (more: there were more), looking at
// no more than maxScan entries (an error says so when it stopped early).
func findConflicts(fsys fs.FS, limit, maxScan int) (pairs []conflictPair, more bool, err error) {
	seen := 0
	errStop := errors.New("stop")
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return err
			}
			return nil // an unreadable entry: skip it
		}
		if seen++; seen > maxScan {
			return errStop
		}
		if !d.Type().IsRegular() || !syncfs.IsConflictCopy(p) {
			return nil
		}
		if len(pairs) == limit {
			more = true
			return nil
		}
		orig, _ := conflictOriginal(p)
		cp := conflictPair{Copy: p, Original: orig}
		if info, err := d.Info(); err == nil {
			cp.Size, cp.ModTime = info.Size(), info.ModTime()
		}
		if st, err := fs.Stat(fsys, orig); err == nil && st.Mode().IsRegular() {
			cp.OriginalHere = true
		}
		pairs = append(pairs, cp)
		return nil
	})
	if errors.Is(err, errStop) {
		return pairs, more, fmt.Errorf("looked at the first %d entries only", maxScan)
	}
	return pairs, more, err
}

// folderData is what a folder's page shows.
type folderData struct {
	Status peer.Status
	Agent  bool
	Folder folderView
	// Path filters the history; "" for the whole folder.
	Path string
	// History is the newest versions first, at most maxHistoryShown of
	// HistoryTotal.
	History      []control.HistoryVersion
	HistoryTotal int
	HistoryErr   string
	// CanRestore: the page offers restores (read-only members may not).
	CanRestore bool
	// CanAct: the page offers changes at all.
	CanAct        bool
	Conflicts     []conflictPair
	ConflictsMore bool
	ConflictsErr  string
	// Back is this page's address, where a change returns.
	Back        string
	Done, Error string
}

// canRestore reports whether a member with right may restore: the owner,
// read-write members, and the hosting server's administrator.
func canRestore(right string) bool {
	return right == "owner" || right == "rw" || right == "server"
}

// findFolder returns the folder id of v.
func findFolder(v view, id string) (folderView, bool) {
	i := slices.IndexFunc(v.Folders, func(f folderView) bool { return f.ID == id })
	if i < 0 {
		return folderView{}, false
	}
	return v.Folders[i], true
}

// pathFolder reads the host's view and the folder of r's path, answering
// r itself when there is none.
func (c *Console) pathFolder(ctx context.Context, w http.ResponseWriter, r *http.Request) (view, folderView, bool) {
	v, err := readView(ctx, c.cfg.Source)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return v, folderView{}, false
	}
	c.cfg.Monitor.noteRates(v.Folders, c.cfg.Now())
	id := r.PathValue("id")
	f, ok := findFolder(v, id)
	if !ok {
		http.Error(w, fmt.Sprintf("no folder %s is synced here", id), http.StatusNotFound)
	}
	return v, f, ok
}

// folderPage is GET /folder/{id}: a folder synced (or hosted) here.
func (c *Console) folderPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout)
	defer cancel()
	v, f, ok := c.pathFolder(ctx, w, r)
	if !ok {
		return
	}
	f.Conflicts = c.cfg.Monitor.Conflicts(f.ID)
	q := r.URL.Query()
	d := folderData{Status: v.Status, Agent: isAgent(v.Status), Folder: f, Path: strings.Trim(q.Get("path"), "/"),
		CanAct: c.cfg.Actions != nil, Done: q.Get("done"), Error: q.Get("error")}
	d.CanRestore = d.CanAct && canRestore(f.Right)
	back := "/folder/" + f.ID
	if d.Path != "" {
		back += "?path=" + url.QueryEscape(d.Path)
	}
	d.Back = back

	h, err := c.cfg.Source.FolderHistory(ctx, control.HistoryRequest{FolderRefRequest: control.FolderRefRequest{Folder: f.ID}, Path: d.Path})
	if err != nil {
		d.HistoryErr = err.Error()
	} else {
		d.HistoryTotal = len(h.Versions)
		vs := slices.Clone(h.Versions)
		slices.Reverse(vs)
		if len(vs) > maxHistoryShown {
			vs = vs[:maxHistoryShown]
		}
		d.History = vs
	}

	if f.Status.Root == "" {
		d.ConflictsErr = "the folder's directory is not known yet"
	} else if root, err := os.OpenRoot(f.Status.Root); err != nil {
		d.ConflictsErr = fmt.Sprintf("opening the folder's directory: %v", err)
	} else {
		d.Conflicts, d.ConflictsMore, err = findConflicts(root.FS(), maxConflictsShown, maxConflictScan)
		if err != nil {
			d.ConflictsErr = err.Error()
		}
		root.Close()
	}

	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, "folder.html", d); err != nil {
		c.cfg.Log.Warn("console: rendering a folder's page", "err", err)
	}
}

// Sides of a conflict (GET /folder/{id}/conflict?copy=P&side=S).
const (
	sideCopy    = "copy"    // the conflict copy
	sideCurrent = "current" // the file it is a copy of, as it is now
)

// conflictFile is GET /folder/{id}/conflict: one side of a conflict, read
// only from the folder's directory. Only a conflict copy and the file it
// is a copy of are served, and only from inside the folder (os.Root
// refuses names and symbolic links that leave it).
func (c *Console) conflictFile(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout)
	defer cancel()
	_, f, ok := c.pathFolder(ctx, w, r)
	if !ok {
		return
	}
	if f.Status.Root == "" {
		http.Error(w, "the folder's directory is not known yet", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	name, err := conflictSide(q.Get("copy"), q.Get("side"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	root, err := os.OpenRoot(f.Status.Root)
	if err != nil {
		http.Error(w, "opening the folder's directory: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer root.Close()
	file, err := root.Open(name)
	if err != nil {
		http.Error(w, fmt.Sprintf("%s: %v", name, errors.Unwrap(err)), http.StatusNotFound)
		return
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.Error(w, name+" is not a file", http.StatusNotFound)
		return
	}
	head := make([]byte, 512)
	n, _ := io.ReadFull(file, head)
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		http.Error(w, "reading "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	typ, inline := servedType(head[:n])
	hd := w.Header()
	hd.Set("Content-Type", typ)
	// What a folder holds is the members' and not the console's: it runs
	// nothing and reaches nothing, whatever it is.
	hd.Set("Content-Security-Policy", "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'")
	disp := "attachment"
	if inline {
		disp = "inline"
	}
	hd.Set("Content-Disposition", fmt.Sprintf("%s; filename=%q", disp, strings.Map(safeFilenameRune, path.Base(name))))
	http.ServeContent(w, r, "", st.ModTime(), file)
}

// conflictSide checks a conflict request and returns the name to serve:
// copy itself, or the file it is a copy of. It is pure.
func conflictSide(copyName, side string) (string, error) {
	if !fs.ValidPath(copyName) || copyName == "." {
		return "", fmt.Errorf("%q is not a path in the folder", copyName)
	}
	orig, ok := conflictOriginal(copyName)
	if !ok {
		return "", fmt.Errorf("%q is not a conflict copy: only conflicts are served here", copyName)
	}
	switch side {
	case sideCopy:
		return copyName, nil
	case sideCurrent:
		return orig, nil
	}
	return "", fmt.Errorf("side %q: want %s or %s", side, sideCopy, sideCurrent)
}

// servedType is the content type a file is served with, from its first
// bytes, and whether a browser may show it: plain text, images and PDF
// are shown, anything else (HTML among it) is a download.
func servedType(head []byte) (typ string, inline bool) {
	t := http.DetectContentType(head)
	switch {
	case strings.HasPrefix(t, "text/plain"):
		return "text/plain; charset=utf-8", true
	case t == "image/png", t == "image/jpeg", t == "image/gif", t == "image/webp", t == "application/pdf":
		return t, true
	}
	return "application/octet-stream", false
}

func safeFilenameRune(r rune) rune {
	if r < 0x20 || r == '"' || r == '\\' || r == 0x7f {
		return '_'
	}
	return r
}
