// Command gen writes the GCP method table (discovery.json.gz) that package gcpcat embeds.
//
// It reads every discovery document shipped by the google.golang.org/api module in go.mod
// (`*/*/*-api.json`, every API and every version) and keeps only what naming a request needs:
// hosts, service and batch paths, and per method its ID, HTTP method, path template and
// parameter order. Run it with `go generate ./catalog/gcpcat`.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

const apiModule = "google.golang.org/api"

func main() {
	out := flag.String("o", "discovery.json.gz", "output file")
	dir := flag.String("dir", "", "directory of the google.golang.org/api module (default: from go list)")
	flag.Parse()
	if err := run(*out, *dir); err != nil {
		log.Fatal(err)
	}
}

func run(out, dir string) error {
	version := ""
	if dir == "" {
		var err error
		dir, version, err = moduleDir()
		if err != nil {
			return err
		}
	}
	t, err := build(dir, version)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(t)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(raw); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	n := 0
	for _, a := range t.APIs {
		n += len(a.Methods)
	}
	log.Printf("wrote %s: %d APIs, %d methods, %d bytes (%d uncompressed)", out, len(t.APIs), n, buf.Len(), len(raw))
	return nil
}

func moduleDir() (dir, version string, err error) {
	b, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}\t{{.Version}}", apiModule).Output()
	if err != nil {
		return "", "", fmt.Errorf("go list -m %s: %w", apiModule, err)
	}
	dir, version, ok := strings.Cut(strings.TrimSpace(string(b)), "\t")
	if !ok || dir == "" {
		return "", "", fmt.Errorf("go list -m %s: no module directory (run go mod download)", apiModule)
	}
	return dir, version, nil
}

// Discovery document, only the fields the table needs.
type discoveryDoc struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	RootURL     string `json:"rootUrl"`
	MTLSRootURL string `json:"mtlsRootUrl"`
	ServicePath string `json:"servicePath"`
	BatchPath   string `json:"batchPath"`
	Endpoints   []struct {
		EndpointURL string `json:"endpointUrl"`
		Location    string `json:"location"`
	} `json:"endpoints"`
	Resources map[string]discoveryResource `json:"resources"`
	Methods   map[string]discoveryMethod   `json:"methods"`
}

type discoveryResource struct {
	Methods   map[string]discoveryMethod   `json:"methods"`
	Resources map[string]discoveryResource `json:"resources"`
}

type discoveryMethod struct {
	ID             string   `json:"id"`
	HTTPMethod     string   `json:"httpMethod"`
	Path           string   `json:"path"`
	FlatPath       string   `json:"flatPath"`
	ParameterOrder []string `json:"parameterOrder"`
	Parameters     map[string]struct {
		Location string `json:"location"`
		Pattern  string `json:"pattern"`
	} `json:"parameters"`
	MediaUpload *struct {
		Protocols map[string]struct {
			Path string `json:"path"`
		} `json:"protocols"`
	} `json:"mediaUpload"`
}

// Table is the generated file's shape; package gcpcat decodes the same JSON.
type Table struct {
	Module string `json:"module"`
	APIs   []API  `json:"apis"`
}

// API is one discovery document (one API version).
type API struct {
	Name        string      `json:"name"`
	Version     string      `json:"version"`
	Host        string      `json:"host"`
	MTLSHost    string      `json:"mtlsHost,omitempty"`
	ServicePath string      `json:"servicePath,omitempty"`
	BatchPath   string      `json:"batchPath,omitempty"`
	Endpoints   [][2]string `json:"endpoints,omitempty"` // host, location
	Methods     []Method    `json:"methods"`
}

// Method is one discovery method.
type Method struct {
	ID         string `json:"id"`
	HTTPMethod string `json:"m"`
	// Path is the flat path template (single-segment variables only), relative to the
	// service path, or the path template when the document has no flat path.
	Path string `json:"p"`
	// Greedy is the reserved-expansion template (`v1/{+name}`) when a {+var} may hold values
	// the flat path cannot express (slashes inside one name); Patterns are those variables'
	// patterns, which tell apart methods sharing the same greedy template.
	Greedy   string            `json:"g,omitempty"`
	Patterns map[string]string `json:"pat,omitempty"`
	Order    []string          `json:"o,omitempty"`
	// Uploads are the media upload paths, absolute from the host (`/upload/storage/v1/b/{bucket}/o`).
	Uploads []string `json:"u,omitempty"`
}

func build(dir, version string) (*Table, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*", "*", "*-api.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no discovery documents under %s", dir)
	}
	sort.Strings(files)
	t := &Table{Module: apiModule + " " + version}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var d discoveryDoc
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		a, err := convert(&d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		t.APIs = append(t.APIs, a)
	}
	sort.SliceStable(t.APIs, func(i, j int) bool {
		if t.APIs[i].Name != t.APIs[j].Name {
			return t.APIs[i].Name < t.APIs[j].Name
		}
		return t.APIs[i].Version < t.APIs[j].Version
	})
	return t, nil
}

func hostOf(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	return strings.ToLower(u.Host), nil
}

func convert(d *discoveryDoc) (API, error) {
	host, err := hostOf(d.RootURL)
	if err != nil || host == "" {
		return API{}, fmt.Errorf("rootUrl %q: no host", d.RootURL)
	}
	mtls, _ := hostOf(d.MTLSRootURL)
	a := API{Name: d.Name, Version: d.Version, Host: host, ServicePath: d.ServicePath, BatchPath: d.BatchPath}
	if mtls != host {
		a.MTLSHost = mtls
	}
	seen := map[string]bool{host: true}
	for _, e := range d.Endpoints {
		h, err := hostOf(e.EndpointURL)
		if err != nil || h == "" || seen[h] {
			continue
		}
		seen[h] = true
		a.Endpoints = append(a.Endpoints, [2]string{h, e.Location})
	}
	var ms []discoveryMethod
	collect(d.Methods, d.Resources, &ms)
	for _, m := range ms {
		out := Method{ID: m.ID, HTTPMethod: m.HTTPMethod, Path: m.Path, Order: m.ParameterOrder}
		if m.FlatPath != "" {
			out.Path = m.FlatPath
		}
		if strings.Contains(m.Path, "{+") && m.FlatPath != "" && m.FlatPath != m.Path {
			pats := map[string]string{}
			needed := false
			for _, v := range reservedVars(m.Path) {
				p := m.Parameters[v].Pattern
				pats[v] = p
				if !segmentPattern(p) {
					needed = true
				}
			}
			if needed {
				out.Greedy = m.Path
				out.Patterns = pats
			}
		}
		if m.MediaUpload != nil {
			for _, name := range sortedKeys(m.MediaUpload.Protocols) {
				if p := m.MediaUpload.Protocols[name].Path; p != "" {
					out.Uploads = append(out.Uploads, p)
				}
			}
		}
		a.Methods = append(a.Methods, out)
	}
	sort.SliceStable(a.Methods, func(i, j int) bool {
		if a.Methods[i].ID != a.Methods[j].ID {
			return a.Methods[i].ID < a.Methods[j].ID
		}
		return a.Methods[i].Path < a.Methods[j].Path
	})
	return a, nil
}

func collect(methods map[string]discoveryMethod, resources map[string]discoveryResource, out *[]discoveryMethod) {
	for _, k := range sortedKeys(methods) {
		*out = append(*out, methods[k])
	}
	for _, k := range sortedKeys(resources) {
		r := resources[k]
		collect(r.Methods, r.Resources, out)
	}
}

var reservedVar = regexp.MustCompile(`\{\+([^}]+)\}`)

func reservedVars(path string) []string {
	var vs []string
	for _, m := range reservedVar.FindAllStringSubmatch(path, -1) {
		vs = append(vs, m[1])
	}
	return vs
}

// segmentPatternRE matches a pattern made only of literal segments and single-segment
// wildcards (`^projects/[^/]+/locations/[^/]+$`): such a value always fits the flat path.
var segmentPatternRE = regexp.MustCompile(`^\^?(?:[A-Za-z0-9_.-]+|\[\^/\]\+)(?:/(?:[A-Za-z0-9_.-]+|\[\^/\]\+))*\$?$`)

func segmentPattern(p string) bool { return p != "" && segmentPatternRE.MatchString(p) }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
