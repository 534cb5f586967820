package cli

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// historyRow is one row of the old worker's history table (D1): channel,
// version, filename, uploaded_at, checksum.
type historyRow struct {
	Channel    string
	Version    string
	Filename   string
	UploadedAt time.Time
	Checksum   string
	// Line locates the row in the export for messages (CSV line or JSON
	// row number).
	Line int
}

// maxHistoryRows bounds an export; the old worker's history is far smaller.
const maxHistoryRows = 1_000_000

// parseHistory reads a history export, JSON or CSV, told apart by its
// first non-blank byte.
func parseHistory(r io.Reader) ([]historyRow, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read history export: %w", err)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	trimmed = bytes.TrimPrefix(trimmed, []byte("\ufeff"))
	if len(trimmed) == 0 {
		return nil, errors.New("history export is empty")
	}
	if trimmed[0] == '[' || trimmed[0] == '{' {
		return parseHistoryJSON(trimmed)
	}
	return parseHistoryCSV(trimmed)
}

// parseHistoryCSV reads a CSV export with a header row naming the
// columns, in any order; other columns are ignored.
func parseHistoryCSV(data []byte) ([]historyRow, error) {
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read CSV header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, need := range []string{"channel", "version", "uploaded_at"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("CSV header %q lacks the column %s (expected channel, version, filename, uploaded_at, checksum)",
				strings.Join(header, ","), need)
		}
	}
	get := func(rec []string, name string) string {
		i, ok := col[name]
		if !ok || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	var rows []historyRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		row := historyRow{
			Channel: get(rec, "channel"), Version: get(rec, "version"), Filename: get(rec, "filename"),
			Checksum: get(rec, "checksum"), Line: line,
		}
		if row.UploadedAt, err = parseUploadedAt(get(rec, "uploaded_at")); err != nil {
			return nil, fmt.Errorf("CSV line %d: %w", line, err)
		}
		if err := row.check(); err != nil {
			return nil, fmt.Errorf("CSV line %d: %w", line, err)
		}
		if len(rows) >= maxHistoryRows {
			return nil, fmt.Errorf("history export has more than %d rows", maxHistoryRows)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// parseHistoryJSON reads an array of row objects, an object with a
// "results" array, or an array of such objects (what wrangler d1 execute
// --json prints).
func parseHistoryJSON(data []byte) ([]historyRow, error) {
	var top any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("history export is not valid JSON: %w", err)
	}
	var objs []map[string]any
	var collect func(v any, depth int) error
	collect = func(v any, depth int) error {
		if depth > 4 {
			return errors.New("history JSON nests too deep; expected an array of rows")
		}
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				if err := collect(e, depth+1); err != nil {
					return err
				}
			}
		case map[string]any:
			if res, ok := x["results"]; ok {
				return collect(res, depth+1)
			}
			objs = append(objs, x)
		default:
			return fmt.Errorf("history JSON holds a %T where a row object was expected", v)
		}
		return nil
	}
	if err := collect(top, 0); err != nil {
		return nil, err
	}
	if len(objs) > maxHistoryRows {
		return nil, fmt.Errorf("history export has more than %d rows", maxHistoryRows)
	}
	rows := make([]historyRow, 0, len(objs))
	for i, o := range objs {
		str := func(k string) string {
			switch v := o[k].(type) {
			case string:
				return strings.TrimSpace(v)
			case json.Number:
				return v.String()
			}
			return ""
		}
		row := historyRow{Channel: str("channel"), Version: str("version"), Filename: str("filename"), Checksum: str("checksum"), Line: i + 1}
		var err error
		if row.UploadedAt, err = parseUploadedAt(str("uploaded_at")); err != nil {
			return nil, fmt.Errorf("JSON row %d: %w", i+1, err)
		}
		if err := row.check(); err != nil {
			return nil, fmt.Errorf("JSON row %d: %w", i+1, err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// check requires what every row needs and fills in the file name the old
// worker derived.
func (r *historyRow) check() error {
	if r.Channel == "" || r.Version == "" {
		return errors.New("row has no channel or no version")
	}
	if r.Filename == "" {
		r.Filename = r.Channel + "-" + r.Version + ".zip"
	}
	if strings.ContainsAny(r.Filename, `/\`) {
		return fmt.Errorf("filename %q is a path; expected a bare name such as stable-1.2.0.zip", r.Filename)
	}
	r.Checksum = strings.ToLower(r.Checksum)
	return nil
}

// uploadedAtLayouts are the forms an upload time may take: RFC 3339, and
// SQLite's datetime("now") (UTC, space-separated), which the old worker
// stored.
var uploadedAtLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04:05.000"}

func parseUploadedAt(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("row has no uploaded_at")
	}
	for _, l := range uploadedAtLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	// Unix seconds, as some exports write them.
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 && n < 1<<40 {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("uploaded_at %q is neither RFC 3339 nor SQLite's 2006-01-02 15:04:05", s)
}
