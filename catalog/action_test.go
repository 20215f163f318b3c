package catalog

import (
	"strings"
	"testing"
)

// oldMatchPattern is MatchPattern as it was before the allocation-free version: both strings
// lower-cased with Unicode rules, then a byte-wise glob match.
func oldMatchPattern(pattern, action string) bool {
	p, s := strings.ToLower(pattern), strings.ToLower(action)
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

var matchPatternCases = []struct {
	pattern, action string
	want            bool
}{
	{"ec2:TerminateInstances", "ec2:TerminateInstances", true},
	{"EC2:terminateinstances", "ec2:TerminateInstances", true},
	{"ec2:*", "EC2:DescribeInstances", true},
	{"*", "", true},
	{"", "", true},
	{"", "a", false},
	{"?", "", false},
	{"s3:Get*", "s3:GetObject", true},
	{"s3:Get*", "s3:PutObject", false},
	{"s3:*Object", "s3:GetObject", true},
	{"s3:*Object", "s3:GetObjectAcl", false},
	{"s3:*Object*", "s3:GetObjectAcl", true},
	{"*:Delete*", "dynamodb:DeleteTable", true},
	{"ec2:?escribe*", "ec2:Describe", true},
	{"ec2:??", "ec2:A", false},
	{"a*b*c", "aXbYbZc", true},
	{"a*b*c", "aXbYbZ", false},
	{"Microsoft.Compute/*/delete", "microsoft.compute/virtualMachines/DELETE", true},
	{"compute.instances.*", "compute.instances.delete", true},
	{"[", "[", true},
	{"@", "`", false}, // neighbours of the letter ranges are not folded
	{"[", "{", false},
	// Non-ASCII: Unicode lower-casing, as before.
	{"k*", "\u212Aey", true}, // Kelvin sign lower-cases to k
	{"\u212A*", "key", true},
	{"ÉTÉ:*", "été:x", true},
	{"?", "é", false}, // ? is one byte
	{"??", "é", true},
	{"İ*", "i̇x", true},
}

func TestMatchPattern(t *testing.T) {
	for _, tc := range matchPatternCases {
		if got := MatchPattern(tc.pattern, tc.action); got != tc.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", tc.pattern, tc.action, got, tc.want)
		}
		if old := oldMatchPattern(tc.pattern, tc.action); old != tc.want {
			t.Errorf("old MatchPattern(%q, %q) = %v, want %v (table is wrong)", tc.pattern, tc.action, old, tc.want)
		}
	}
}

func TestMatchPatternAllocs(t *testing.T) {
	var ok bool
	n := testing.AllocsPerRun(100, func() {
		ok = MatchPattern("EC2:Terminate*", "ec2:TerminateInstances") && !MatchPattern("s3:*Object", "s3:GetObjectAcl")
	})
	if !ok {
		t.Error("wrong result")
	}
	if n != 0 {
		t.Errorf("MatchPattern allocates %v times on ASCII input, want 0", n)
	}
}

func FuzzMatchPattern(f *testing.F) {
	for _, tc := range matchPatternCases {
		f.Add(tc.pattern, tc.action)
	}
	f.Fuzz(func(t *testing.T, pattern, action string) {
		if got, want := MatchPattern(pattern, action), oldMatchPattern(pattern, action); got != want {
			t.Errorf("MatchPattern(%q, %q) = %v, old implementation says %v", pattern, action, got, want)
		}
	})
}

func BenchmarkMatchPattern(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if !MatchPattern("EC2:Terminate*", "ec2:TerminateInstances") {
			b.Fatal("no match")
		}
	}
}
