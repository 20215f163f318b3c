package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/airlockhq/airlock/catalog"
	"github.com/airlockhq/airlock/catalog/awscat"
	"github.com/airlockhq/airlock/catalog/azurecat"
	"github.com/airlockhq/airlock/catalog/gcpcat"
)

func init() {
	register(command{name: "catalog", summary: "find action names and their default risk tiers (search, show)", run: catalogCmd})
}

// catalogEntry is one action in the CLI's output, whatever the cloud.
type catalogEntry struct {
	Cloud     string       `json:"cloud"`
	Action    string       `json:"action"`
	Service   string       `json:"service"`
	Operation string       `json:"operation"`
	Protocol  string       `json:"protocol,omitempty"`
	Method    string       `json:"method"`
	Path      string       `json:"path"`
	Risk      catalog.Risk `json:"risk"`
}

func catalogCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usageText = "Usage:\n  airlock catalog search TEXT [--cloud aws|gcp|azure] [--limit N] [--json]\n  airlock catalog show ACTION [--json]\n\n" +
		"ACTION is the cloud's own name: ec2:TerminateInstances, compute.instances.delete,\n" +
		"Microsoft.Compute/virtualMachines/delete. Names are what policies match (actions: [...]).\n"
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, usageText)
		return errUsage
	}
	sub := args[0]
	fs := newFlagSet("catalog "+sub, "catalog "+sub+" ...", stderr)
	cloud := fs.String("cloud", "", "search only this cloud (aws, gcp, azure)")
	limit := fs.Int("limit", 30, "most results per cloud")
	asJSON := fs.Bool("json", false, "print JSON")
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		fmt.Fprint(stderr, usageText)
		return errUsage
	}
	var entries []catalogEntry
	switch sub {
	case "search":
		entries = catalogSearch(positional[0], *cloud, *limit)
		if len(entries) == 0 {
			return fmt.Errorf("no action matches %q", positional[0])
		}
	case "show":
		e, ok := catalogShow(positional[0])
		if !ok {
			return fmt.Errorf("unknown action %q (try: airlock catalog search %s)", positional[0], lastWord(positional[0]))
		}
		entries = []catalogEntry{e}
	default:
		fmt.Fprint(stderr, usageText)
		return errUsage
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if sub == "show" {
			return enc.Encode(entries[0])
		}
		return enc.Encode(entries)
	}
	if sub == "show" {
		e := entries[0]
		fmt.Fprintf(stdout, "action:    %s\ncloud:     %s\nservice:   %s\noperation: %s\nrisk:      %s\nrequest:   %s %s\n",
			e.Action, e.Cloud, e.Service, e.Operation, e.Risk, e.Method, e.Path)
		if e.Protocol != "" {
			fmt.Fprintf(stdout, "protocol:  %s\n", e.Protocol)
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tRISK\tREQUEST")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s %s\n", e.Action, e.Risk, e.Method, e.Path)
	}
	return tw.Flush()
}

func catalogSearch(text, cloud string, limit int) []catalogEntry {
	var out []catalogEntry
	if cloud == "" || cloud == catalog.AWS {
		for _, o := range awscat.Search(text, limit) {
			out = append(out, catalogEntry{Cloud: catalog.AWS, Action: o.IAMAction, Service: o.Service, Operation: o.Operation,
				Protocol: o.Protocol, Method: o.Method, Path: o.URI, Risk: o.Risk})
		}
	}
	if cloud == "" || cloud == catalog.GCP {
		for _, o := range gcpcat.Search(text, limit) {
			out = append(out, catalogEntry{Cloud: catalog.GCP, Action: o.IAMAction, Service: o.Service, Operation: o.Operation,
				Method: o.Method, Path: o.Path, Risk: o.Risk})
		}
	}
	if cloud == "" || cloud == catalog.Azure {
		// Azure names are structural: any Provider/type/verb parses, so search means describe.
		if e, ok := azureEntry(text); ok {
			out = append(out, e)
		}
	}
	return out
}

func catalogShow(action string) (catalogEntry, bool) {
	if o, ok := awscat.Lookup(action); ok && strings.Contains(action, ":") {
		return catalogEntry{Cloud: catalog.AWS, Action: o.IAMAction, Service: o.Service, Operation: o.Operation,
			Protocol: o.Protocol, Method: o.Method, Path: o.URI, Risk: o.Risk}, true
	}
	if strings.Contains(action, "/") {
		return azureEntry(action)
	}
	if o, ok := gcpcat.Lookup(action); ok {
		return catalogEntry{Cloud: catalog.GCP, Action: o.IAMAction, Service: o.Service, Operation: o.Operation,
			Method: o.Method, Path: o.Path, Risk: o.Risk}, true
	}
	return catalogEntry{}, false
}

func azureEntry(action string) (catalogEntry, bool) {
	o, ok := azurecat.Describe(action)
	if !ok {
		return catalogEntry{}, false
	}
	return catalogEntry{Cloud: catalog.Azure, Action: o.IAMAction, Service: o.Service, Operation: o.Operation,
		Method: o.Method, Path: o.Path, Risk: o.Risk}, true
}

func lastWord(s string) string {
	s = strings.NewReplacer(":", " ", ".", " ", "/", " ").Replace(s)
	f := strings.Fields(s)
	if len(f) == 0 {
		return s
	}
	return f[len(f)-1]
}
