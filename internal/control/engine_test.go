package control

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/baton-sync/baton/peer/foldersync"
)

// fillNonZero sets every field of the struct v points to to a value other
// than its zero, different for each field.
func fillNonZero(t *testing.T, v reflect.Value) {
	t.Helper()
	for i := range v.NumField() {
		f := v.Field(i)
		n := i + 1
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(n))
		case reflect.Uint64:
			f.SetUint(uint64(n))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Slice:
			s := reflect.MakeSlice(f.Type(), 1, 1)
			if e := s.Index(0); e.Kind() == reflect.String {
				e.SetString(v.Type().Field(i).Name)
			} else {
				fillNonZero(t, e)
			}
			f.Set(s)
		case reflect.Pointer:
			p := reflect.New(f.Type().Elem())
			fillNonZero(t, p.Elem())
			f.Set(p)
		case reflect.Struct:
			if f.Type() != reflect.TypeFor[time.Time]() {
				t.Fatalf("field %s: a struct fillNonZero does not know", v.Type().Field(i).Name)
			}
			f.Set(reflect.ValueOf(time.Date(2025, 1, n, 0, 0, 0, 0, time.UTC)))
		default:
			t.Fatalf("field %s: kind %s that fillNonZero does not know", v.Type().Field(i).Name, f.Kind())
		}
	}
}

func jsonFields(t *testing.T, v any) map[string]json.RawMessage {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestNewFolderStatus: 'folder status --json' keeps its field names while
// foldersync.FolderStatus may change, so newFolderStatus copies field by
// field. Every field the two share is copied, and a field foldersync adds
// fails here until it is shown or named as left out.
func TestNewFolderStatus(t *testing.T) {
	var st foldersync.FolderStatus
	fillNonZero(t, reflect.ValueOf(&st).Elem())
	engine, shown := jsonFields(t, st), jsonFields(t, newFolderStatus(st))
	// The servers are shown by ID and name, the devices also with their
	// user: folderStatus names them from the state (TestAgentFolderStatus
	// and TestServerFolderStatusDevices in cmd/baton check it).
	delete(engine, "servers")
	delete(engine, "devices")
	var onlyEngine, onlyShown []string
	for k, v := range engine {
		got, ok := shown[k]
		if !ok {
			onlyEngine = append(onlyEngine, k)
			continue
		}
		if string(got) != string(v) {
			t.Errorf("newFolderStatus: %s = %s; want %s", k, got, v)
		}
	}
	for k := range shown {
		if _, ok := engine[k]; !ok {
			onlyShown = append(onlyShown, k)
		}
	}
	slices.Sort(onlyEngine)
	slices.Sort(onlyShown)
	// Not shown: the index sequence numbers and the last sync time.
	if want := []string{"last_sync", "sequence", "server_sequence"}; !slices.Equal(onlyEngine, want) {
		t.Errorf("foldersync.FolderStatus fields not in FolderStatus: %v; want %v", onlyEngine, want)
	}
	// Added by the control API: the Catalog's name and the progress (and
	// a hint, empty here).
	if want := []string{"name", "progress"}; !slices.Equal(onlyShown, want) {
		t.Errorf("FolderStatus fields not in foldersync.FolderStatus: %v; want %v", onlyShown, want)
	}
}
