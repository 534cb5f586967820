package update

import (
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    Version
		wantErr bool
	}{
		{in: "1.2.3", want: Version{1, 2, 3, ""}},
		{in: "v1.2.3", want: Version{1, 2, 3, ""}},
		{in: "0.0.0", want: Version{}},
		{in: "01.002.3", want: Version{1, 2, 3, ""}},
		{in: "1.2.3-beta.1", want: Version{1, 2, 3, "beta.1"}},
		{in: "1.2.3-beta.1+exp.sha.5114f85", want: Version{1, 2, 3, "beta.1"}},
		{in: "1.2.3+build", want: Version{1, 2, 3, ""}},
		{in: "18446744073709551615.0.0", want: Version{Major: 1<<64 - 1}},
		{in: "18446744073709551616.0.0", wantErr: true},
		{in: "", wantErr: true},
		{in: "1", wantErr: true},
		{in: "1.2", wantErr: true},
		{in: "1.2.3.4", wantErr: true},
		{in: "1..3", wantErr: true},
		{in: ".1.2", wantErr: true},
		{in: "1.2.3-", wantErr: true},
		{in: "1.2.3-01", wantErr: true},
		{in: "1.2.3-a..b", wantErr: true},
		{in: "1.2.3+", wantErr: true},
		{in: "1.2.3-é", wantErr: true},
		{in: "a.b.c", wantErr: true},
		{in: "1.2.-3", wantErr: true},
		{in: "builtin", wantErr: true},
		{in: " 1.2.3", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseVersion(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseVersion(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("ParseVersion(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestCoerceNative(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "1", want: "1.0.0"},
		{in: "1.2", want: "1.2.0"},
		{in: "1.2.3", want: "1.2.3"},
		{in: "2-rc.1", want: "2.0.0-rc.1"},
		{in: "2.1+42", want: "2.1.0"},
		{in: "builtin", want: "0.0.0"},
		{in: "unknown", want: "0.0.0"},
		{in: "", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "1.2.3.4", wantErr: true},
		{in: "1.x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := CoerceNative(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("CoerceNative(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err == nil && got.String() != tt.want {
				t.Errorf("CoerceNative(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	// Each version is lower than the next (semver 2.0 §11 example, plus
	// numeric edge cases).
	ordered := []string{
		"0.9.0",
		"1.0.0-alpha",
		"1.0.0-alpha.1",
		"1.0.0-alpha.beta",
		"1.0.0-beta",
		"1.0.0-beta.2",
		"1.0.0-beta.11",
		"1.0.0-rc.1",
		"1.0.0",
		"1.0.1",
		"1.1.0",
		"1.10.0",
		"2.0.0",
	}
	for i := range ordered {
		for j := range ordered {
			a, err := ParseVersion(ordered[i])
			if err != nil {
				t.Fatal(err)
			}
			b, err := ParseVersion(ordered[j])
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	a, _ := ParseVersion("1.0.0+a")
	b, _ := ParseVersion("1.0.0+b")
	if a.Compare(b) != 0 {
		t.Errorf("build metadata must not affect precedence")
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.2.3", "v1.0.0-rc.1+b", "1", "1.2", "builtin", "1.2.3-01", "99999999999999999999.0.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			if _, err2 := CoerceNative(s); err2 == nil && strings.Count(s, ".") >= 2 && !strings.ContainsAny(s, "-+") {
				t.Fatalf("CoerceNative accepts %q that ParseVersion refuses: %v", s, err)
			}
			return
		}
		// A parsed version prints as a version that parses back to itself.
		again, err := ParseVersion(v.String())
		if err != nil {
			t.Fatalf("ParseVersion(%q) = %+v, but its String %q does not parse: %v", s, v, v.String(), err)
		}
		if again != v {
			t.Fatalf("round trip of %q: %+v != %+v", s, again, v)
		}
		if v.Compare(v) != 0 {
			t.Fatalf("%q does not equal itself", s)
		}
		if _, err := CoerceNative(s); err != nil {
			t.Fatalf("CoerceNative refuses %q that ParseVersion accepts: %v", s, err)
		}
	})
}
