package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestCatalogCLI(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"show aws", []string{"catalog", "show", "ec2:TerminateInstances"}, 0, []string{"ec2:TerminateInstances", "destructive"}},
		{"show aws case-insensitive", []string{"catalog", "show", "iam:attachrolepolicy"}, 0, []string{"iam:AttachRolePolicy", "privilege"}},
		{"show gcp", []string{"catalog", "show", "compute.instances.delete"}, 0, []string{"compute.instances.delete", "destructive", "DELETE"}},
		{"show azure", []string{"catalog", "show", "Microsoft.Compute/virtualMachines/delete"}, 0, []string{"Microsoft.Compute/virtualMachines/delete", "destructive"}},
		{"search", []string{"catalog", "search", "TerminateInstances", "--cloud", "aws"}, 0, []string{"ec2:TerminateInstances"}},
		{"search json", []string{"catalog", "search", "--json", "--cloud", "gcp", "instances.delete"}, 0, []string{`"action": "compute.instances.delete"`}},
		{"unknown", []string{"catalog", "show", "ec2:NoSuchThing"}, 1, []string{"unknown action"}},
		{"usage", []string{"catalog"}, 2, []string{"Usage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tt.args, &out, &errb)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out.String(), errb.String())
			}
			all := out.String() + errb.String()
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
		})
	}
}
