package control

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/baton-sync/baton/peer"
	"github.com/baton-sync/baton/peer/foldersync"
)

// openAPI is the part of openapi.yaml the tests read.
type openAPI struct {
	OpenAPI    string                    `yaml:"openapi"`
	Paths      map[string]map[string]any `yaml:"paths"`
	Components struct {
		Schemas map[string]schema `yaml:"schemas"`
	} `yaml:"components"`
}

type schema struct {
	Type                 string            `yaml:"type"`
	Format               string            `yaml:"format"`
	Ref                  string            `yaml:"$ref"`
	Items                *schema           `yaml:"items"`
	Properties           map[string]schema `yaml:"properties"`
	AdditionalProperties *schema           `yaml:"additionalProperties"`
}

func readOpenAPI(t *testing.T) openAPI {
	t.Helper()
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPI
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.yaml: openapi %q; want 3.x", doc.OpenAPI)
	}
	return doc
}

// registeredRoutes are the patterns ("METHOD /path") this package's
// non-test files register on a mux (X.HandleFunc("...") or X.Handle("...")).
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: a route registered with a pattern that is not a literal", fset.Position(call.Pos()))
				return true
			}
			p, _ := strconv.Unquote(lit.Value)
			routes = append(routes, p)
			return true
		})
	}
	return routes
}

// TestOpenAPIRoutes: every route the control API registers is in
// openapi.yaml with its method, and openapi.yaml describes no other.
func TestOpenAPIRoutes(t *testing.T) {
	doc := readOpenAPI(t)
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	routes := registeredRoutes(t)
	if len(routes) < 20 {
		t.Fatalf("found only %d routes: %v", len(routes), routes)
	}
	registered := map[string]bool{}
	for _, r := range routes {
		method, path, ok := strings.Cut(r, " ")
		if !ok {
			if r == "/" {
				continue // the fallback: no such endpoint
			}
			t.Errorf("route %q has no method", r)
			continue
		}
		registered[r] = true
		if !documented[r] {
			t.Errorf("route %s %s is not in openapi.yaml", method, path)
		}
	}
	for r := range documented {
		if !registered[r] {
			t.Errorf("openapi.yaml describes %s, which the control API does not serve", r)
		}
	}
}

// schemaTypes are the Go types openapi.yaml's component schemas describe.
var schemaTypes = map[string]any{
	"Status":                peer.Status{},
	"ChainStatus":           peer.ChainStatus{},
	"PeerStatus":            peer.PeerStatus{},
	"CollectionStatus":      peer.CollectionStatus{},
	"QuarantineEvent":       peer.QuarantineEvent{},
	"Counters":              peer.Counters{},
	"Promotion":             peer.Promotion{},
	"DeviceInfo":            peer.DeviceInfo{},
	"User":                  User{},
	"ChainServer":           ChainServer{},
	"Member":                Member{},
	"Folder":                Folder{},
	"Report":                Report{},
	"AddUserRequest":        AddUserRequest{},
	"SetUserRequest":        SetUserRequest{},
	"RemoveUserRequest":     RemoveUserRequest{},
	"AddServerRequest":      AddServerRequest{},
	"PromoteRequest":        PromoteRequest{},
	"CreateFolderRequest":   CreateFolderRequest{},
	"ShareFolderRequest":    ShareFolderRequest{},
	"FolderOptionsRequest":  FolderOptionsRequest{},
	"GenerateReportRequest": GenerateReportRequest{},
	"SetPasswordRequest":    SetPasswordRequest{},
	"OKResult":              OKResult{},
	"MutationResult":        MutationResult{},
	"AgentFolder":           AgentFolder{},
	"AgentDevice":           AgentDevice{},
	"AgentCreateRequest":    AgentCreateRequest{},
	"AgentOptionsRequest":   AgentOptionsRequest{},
	"AgentShareRequest":     AgentShareRequest{},
	"AgentAcceptRequest":    AgentAcceptRequest{},
	"AgentFolderRequest":    AgentFolderRequest{},
	"AgentResult":           AgentResult{},
	"FolderRefRequest":      FolderRefRequest{},
	"FolderHistory":         FolderHistory{},
	"HistoryVersion":        HistoryVersion{},
	"RestoreRequest":        RestoreRequest{},
	"RestoreResult":         RestoreResult{},
	"ExportRequest":         ExportRequest{},
	"ExportResult":          ExportResult{},
	"FolderStatus":          FolderStatus{},
	"HistoryStatus":         HistoryStatus{},
	"FolderServer":          FolderServer{},
	"FailedChange":          foldersync.FailedChange{},
	"QuotaStatus":           foldersync.QuotaStatus{},
	"BusyEntry":             foldersync.BusyEntry{},
	"SkippedEntry":          foldersync.SkippedEntry{},
	"ErrorBody":             ErrorBody{},
}

// goSchema is the schema of Go type t as openapi.yaml writes it.
func goSchema(t reflect.Type) schema {
	switch {
	case t == reflect.TypeFor[time.Time]():
		return schema{Type: "string", Format: "date-time"}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return schema{Type: "string", Format: "byte"}
	}
	switch t.Kind() {
	case reflect.String:
		return schema{Type: "string"}
	case reflect.Bool:
		return schema{Type: "boolean"}
	case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Uint32, reflect.Int32:
		return schema{Type: "integer", Format: "int64"}
	case reflect.Float64:
		return schema{Type: "number"}
	case reflect.Slice:
		it := goSchema(t.Elem())
		return schema{Type: "array", Items: &it}
	case reflect.Map:
		v := goSchema(t.Elem())
		return schema{Type: "object", AdditionalProperties: &v}
	case reflect.Pointer:
		return goSchema(t.Elem())
	case reflect.Struct:
		return schema{Ref: "#/components/schemas/" + t.Name()}
	}
	panic("no schema for " + t.String())
}

// schemaFields are struct t's JSON properties and their schemas.
func schemaFields(t reflect.Type) map[string]schema {
	out := map[string]schema{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" && f.Anonymous && f.Type.Kind() == reflect.Struct {
			// encoding/json lifts an embedded struct's fields.
			maps.Copy(out, schemaFields(f.Type))
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = goSchema(f.Type)
	}
	return out
}

// TestOpenAPISchemas: each component schema has the JSON properties of
// its Go type, with their types.
func TestOpenAPISchemas(t *testing.T) {
	doc := readOpenAPI(t)
	for name, v := range schemaTypes {
		got, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("openapi.yaml has no schema %s", name)
			continue
		}
		want := schemaFields(reflect.TypeOf(v))
		for prop, ws := range want {
			gs, ok := got.Properties[prop]
			if !ok {
				t.Errorf("schema %s: no property %s", name, prop)
				continue
			}
			if !reflect.DeepEqual(strip(gs), ws) {
				t.Errorf("schema %s property %s = %+v; want %+v", name, prop, strip(gs), ws)
			}
		}
		for prop := range got.Properties {
			if _, ok := want[prop]; !ok {
				t.Errorf("schema %s: property %s is not in %T", name, prop, v)
			}
		}
	}
	// Every $ref in the document names a schema.
	b, _ := os.ReadFile("openapi.yaml")
	for _, m := range regexp.MustCompile(`#/components/schemas/([A-Za-z0-9_]+)`).FindAllStringSubmatch(string(b), -1) {
		ref := m[1]
		if _, ok := doc.Components.Schemas[ref]; !ok {
			t.Errorf("openapi.yaml refers to schema %q, which it does not define", ref)
		}
	}
}

// strip keeps what goSchema sets: the type, format, $ref, items and
// additionalProperties (not descriptions).
func strip(s schema) schema {
	out := schema{Type: s.Type, Format: s.Format, Ref: s.Ref}
	if s.Items != nil {
		it := strip(*s.Items)
		out.Items = &it
	}
	if s.AdditionalProperties != nil {
		ap := strip(*s.AdditionalProperties)
		out.AdditionalProperties = &ap
	}
	return out
}
