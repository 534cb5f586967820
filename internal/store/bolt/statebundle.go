package bolt

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unsafe"

	"github.com/otaship/ota/pkg/ota"
)

// errSlowPath makes decodeStateBundle hand a record to encoding/json.
var errSlowPath = errors.New("record needs the full decoder")

// decodeStateBundle decodes the stateBundle fields of a stored bundle
// record. Loading every app's state runs it once per stored bundle (a
// million on a big store), where encoding/json's reflection and validation
// cost seconds.
// It reads the shape json.Marshal writes: an object of ASCII strings
// without escapes, integers and booleans. Anything else in a field it
// reads (escapes, null, other case, odd numbers) goes to encoding/json, so
// for every record json.Unmarshal accepts the result is the same. The
// values of fields it skips are not validated.
func decodeStateBundle(v []byte, r *stateBundle) error {
	if err := fastStateBundle(v, r); err != nil {
		*r = stateBundle{}
		return json.Unmarshal(v, r)
	}
	return nil
}

func fastStateBundle(v []byte, r *stateBundle) error {
	p := &scan{b: v}
	if !p.byte('{') {
		return errSlowPath
	}
	if p.byte('}') {
		return p.end()
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return errSlowPath
		}
		var err error
		switch string(key) { // no allocation: the compiler compares in place
		case "version":
			r.Version, err = p.strField()
		case "kind":
			if bytes.HasPrefix(p.b[p.i:], []byte(`"web"`)) {
				p.i += 5
				r.Kind = ota.KindWeb // one shared string, not a million copies
			} else {
				r.Kind, err = p.strField()
			}
		case "sha256":
			r.SHA256, err = p.strField()
		case "min_native":
			r.MinNative, err = p.strField()
		case "max_native":
			r.MaxNative, err = p.strField()
		case "signature":
			r.Signature, err = p.strField()
		case "size":
			r.Size, err = p.int()
		case "files":
			var n int64
			n, err = p.int()
			r.Files = int(n)
			if int64(r.Files) != n {
				return errSlowPath // encoding/json refuses what does not fit
			}
		case "deleted":
			r.Deleted, err = p.bool()
		case "encryption":
			if r.Encryption != nil {
				return errSlowPath // encoding/json merges a repeated object
			}
			r.Encryption, err = p.encryption()
		default:
			for _, f := range stateBundleFields {
				if bytes.EqualFold(key, f) {
					return errSlowPath // encoding/json matches keys in any case
				}
			}
			err = p.skip()
		}
		if err != nil {
			return err
		}
		if p.byte(',') {
			continue
		}
		if p.byte('}') {
			return p.end()
		}
		return errSlowPath
	}
}

var stateBundleFields = [][]byte{
	[]byte("version"), []byte("kind"), []byte("sha256"), []byte("size"),
	[]byte("min_native"), []byte("max_native"), []byte("deleted"),
	[]byte("encryption"), []byte("signature"), []byte("files"),
}

// encryption reads the object of an encrypted bundle's keys. Like the
// record, it goes to the slow path for anything json.Marshal would not
// write: null, other keys, other case.
func (p *scan) encryption() (*encryptionRecord, error) {
	if !p.byte('{') {
		return nil, errSlowPath
	}
	e := &encryptionRecord{}
	if p.byte('}') {
		return e, nil
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return nil, errSlowPath
		}
		var err error
		switch string(key) {
		case "session_key":
			e.SessionKey, err = p.strField()
		case "encrypted_checksum":
			e.EncryptedChecksum, err = p.strField()
		case "key_id":
			e.KeyID, err = p.strField()
		default:
			return nil, errSlowPath
		}
		if err != nil {
			return nil, err
		}
		if p.byte(',') {
			continue
		}
		if p.byte('}') {
			return e, nil
		}
		return nil, errSlowPath
	}
}

// scan is a cursor over the bytes of one record. json.Marshal writes no
// white space, so none is accepted.
type scan struct {
	b []byte
	i int
}

func (p *scan) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *scan) end() error {
	if p.i != len(p.b) {
		return errSlowPath
	}
	return nil
}

// str reads a string without escapes and returns its bytes.
func (p *scan) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	n := bytes.IndexByte(p.b[p.i:], '"')
	if n < 0 {
		return nil, false
	}
	s := p.b[p.i : p.i+n]
	if bytes.IndexByte(s, '\\') >= 0 {
		return nil, false
	}
	for _, c := range s {
		if c < 0x20 || c >= 0x80 {
			// Control bytes are invalid JSON and non-ASCII may be invalid
			// UTF-8, which encoding/json replaces: both take the slow path.
			return nil, false
		}
	}
	p.i += n + 1
	return s, true
}

func (p *scan) strField() (string, error) {
	if p.i+4 <= len(p.b) && string(p.b[p.i:p.i+4]) == "null" {
		return "", errSlowPath // json.Unmarshal keeps the old value; rare enough
	}
	s, ok := p.str()
	if !ok {
		return "", errSlowPath
	}
	return string(s), nil
}

func (p *scan) int() (int64, error) {
	j := p.i
	for j < len(p.b) && (p.b[j] == '-' || (p.b[j] >= '0' && p.b[j] <= '9')) {
		j++
	}
	n, err := strconv.ParseInt(unsafeString(p.b[p.i:j]), 10, 64)
	if err != nil || (j < len(p.b) && (p.b[j] == '.' || p.b[j] == 'e' || p.b[j] == 'E')) {
		return 0, errSlowPath
	}
	if s := p.b[p.i:j]; len(s) > 1 && (s[0] == '0' || (s[0] == '-' && s[1] == '0')) {
		return 0, errSlowPath // leading zeros are not JSON
	}
	p.i = j
	return n, nil
}

func (p *scan) bool() (bool, error) {
	switch {
	case bytes.HasPrefix(p.b[p.i:], []byte("true")):
		p.i += 4
		return true, nil
	case bytes.HasPrefix(p.b[p.i:], []byte("false")):
		p.i += 5
		return false, nil
	}
	return false, errSlowPath
}

// unsafeString views b as a string for a call that does not keep it.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// skip passes over one value of a field the snapshot does not use: a
// string, a literal or number, or an object or array (nested ones too).
func (p *scan) skip() error {
	depth := 0
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			if _, ok := p.str(); !ok {
				return errSlowPath
			}
		case c == '{' || c == '[':
			depth++
			p.i++
		case c == '}' || c == ']':
			if depth == 0 {
				return nil
			}
			depth--
			p.i++
		case c == ',' && depth == 0:
			return nil
		case c == ',' || c == ':' || c == '-' || c == '.' || c == '+' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
			p.i++
		default:
			return errSlowPath
		}
		if depth == 0 && p.i < len(p.b) && (p.b[p.i] == ',' || p.b[p.i] == '}') {
			return nil
		}
	}
	return errSlowPath
}
