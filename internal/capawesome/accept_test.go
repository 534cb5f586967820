package capawesome

import (
	"strings"
	"testing"
)

func TestAccepts(t *testing.T) {
	for _, tt := range []struct {
		header string
		br     bool
		gzip   bool
	}{
		{"", false, false},
		{"br,gzip", true, true},                             // OkHttp's BrotliInterceptor
		{"gzip", false, true},                               // OkHttp alone
		{"br;q=1.0, gzip;q=0.9, deflate;q=0.8", true, true}, // Alamofire
		{"gzip, deflate, br", true, true},                   // URLSession
		{"br;q=0, gzip", false, true},                       // refused
		{"BR; q=0.000", false, false},                       // any case, q=0 in any form
		{"*", true, true},                                   // anything
		{"*;q=0, gzip", false, true},                        //
		{"br;q=0, *", false, true},                          // named beats *
		{"identity", false, false},                          //
		{"brotli, gzipx", false, false},                     // whole tokens only
		{" br ; level=1 ; q=0.5 ", true, false},             // other parameters
		{",,;", false, false},                               //
		{"br;q=", false, false},                             // an empty q reads as 0
	} {
		if got := accepts(tt.header, "br"); got != tt.br {
			t.Errorf("accepts(%q, br) = %t, want %t", tt.header, got, tt.br)
		}
		if got := accepts(tt.header, "gzip"); got != tt.gzip {
			t.Errorf("accepts(%q, gzip) = %t, want %t", tt.header, got, tt.gzip)
		}
	}
}

// FuzzAccepts: any header is read without panicking, and a coding is
// only accepted by a header that names it or "*".
func FuzzAccepts(f *testing.F) {
	for _, s := range []string{"", "br,gzip", "br;q=1.0, gzip;q=0.9", "*;q=0", "br;q=0.0;x=y", ";;,,", "\x00br"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		for _, coding := range []string{"br", "gzip"} {
			if accepts(header, coding) && !strings.Contains(strings.ToLower(header), coding) && !strings.Contains(header, "*") {
				t.Errorf("accepts(%q, %s) without naming it or *", header, coding)
			}
		}
	})
}
