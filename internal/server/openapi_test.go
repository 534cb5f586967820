package server

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// openAPIMethods are the operation keys of an OpenAPI path item.
var openAPIMethods = map[string]bool{
	"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true,
}

// echoParam matches a :param segment of an echo route.
var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// TestOpenAPIMatchesRoutes fails when docs/openapi.yaml and the router
// disagree on the set of (method, path), in either direction.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &spec); err != nil {
		t.Fatalf("docs/openapi.yaml is not valid YAML: %v", err)
	}
	if !strings.HasPrefix(spec.OpenAPI, "3.") {
		t.Fatalf("openapi = %q, want 3.x", spec.OpenAPI)
	}
	documented := map[string]bool{}
	for path, item := range spec.Paths {
		for method, op := range item {
			if !openAPIMethods[method] {
				continue // parameters, summary, ...
			}
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			if m, ok := op.(map[string]any); !ok || m["responses"] == nil {
				t.Errorf("%s has no responses", key)
			}
		}
	}

	// /metrics is routed only with a metrics token: set one so every route
	// that can exist is registered.
	env := newTestEnv(t, func(c *Config) { c.MetricsToken = "metrics-secret" })
	served := map[string]bool{}
	for _, r := range env.srv.e.Routes() {
		if !isHTTPMethod(r.Method) || r.Path == "/*" {
			continue // echo's not-found route
		}
		served[r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	if len(served) < 10 {
		t.Fatalf("only %d routes found; the router was not read", len(served))
	}
	for _, k := range missing(served, documented) {
		t.Errorf("route %s is served but not in docs/openapi.yaml", k)
	}
	for _, k := range missing(documented, served) {
		t.Errorf("docs/openapi.yaml documents %s, which the router does not serve", k)
	}
}

// TestOpenAPIRefsResolve checks every local $ref points at something, so
// the file loads in Swagger UI and code generators.
func TestOpenAPIRefsResolve(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && k == "$ref" {
					refs = append(refs, s)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	if len(refs) == 0 {
		t.Fatal("no $ref found")
	}
	for _, ref := range refs {
		if err := resolve(doc, ref); err != nil {
			t.Errorf("$ref %s: %v", ref, err)
		}
	}
}

func resolve(doc map[string]any, ref string) error {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return fmt.Errorf("not a local reference")
	}
	var cur any = doc
	for _, seg := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return fmt.Errorf("%q is not an object", seg)
		}
		if cur, ok = m[seg]; !ok {
			return fmt.Errorf("%q not found", seg)
		}
	}
	return nil
}

func isHTTPMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodTrace, http.MethodConnect:
		return true
	}
	return false
}

// missing lists the keys of a that b lacks, sorted.
func missing(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
