package cli

import (
	"fmt"
	"testing"

	"github.com/otaship/ota/internal/cli/iostreams"
)

func TestWriteTable(t *testing.T) {
	row := func(n int) string { return fmt.Sprintf("%d\tname-%d", n, n) }
	tests := []struct {
		name           string
		items          []int
		stdout, stderr string
	}{
		{"empty says so on stderr only", nil, "", "nothing yet\n"},
		{"rows under the header, aligned", []int{1, 100}, "N    NAME\n1    name-1\n100  name-100\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			io, _, out, errOut := iostreams.Test()
			if err := writeTable(&Factory{IO: io}, tt.items, "nothing yet", "N\tNAME", row); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.stdout || errOut.String() != tt.stderr {
				t.Errorf("stdout %q stderr %q; want %q and %q", out.String(), errOut.String(), tt.stdout, tt.stderr)
			}
		})
	}
}
