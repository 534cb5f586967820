package server

import (
	"bytes"
	"encoding/json"

	"github.com/otaship/ota/pkg/ota"
)

// decodeUpdateRequest decodes an update check into a zero req. Every
// device sends one on every launch, and encoding/json's reflection was
// the largest cost of answering it, so the plain shape the plugin sends
// (JSON.stringify: no white space, ASCII strings without escapes) is read
// directly. Anything else goes to encoding/json, so the result, and the
// error for a body that is not JSON, is always what json.Unmarshal gives.
func decodeUpdateRequest(data []byte, req *ota.UpdateRequest) error {
	if fastUpdateRequest(data, req) {
		return nil
	}
	// Decoded into a copy: handing req itself to encoding/json would move
	// every caller's request to the heap, fast path included.
	var slow ota.UpdateRequest
	err := json.Unmarshal(data, &slow)
	*req = slow
	return err
}

// fastUpdateRequest reports false when data needs the full decoder; req
// may then hold partial values.
func fastUpdateRequest(data []byte, req *ota.UpdateRequest) bool {
	// One string for the whole body, which the fields are cut from: one
	// allocation instead of one per field. Nothing keeps an update
	// request's strings beyond the request (metric labels come from the
	// snapshot), so the body is not held by them.
	p := jsonScan{b: data, s: string(data)}
	return p.object(func(key []byte) bool {
		if ok, known := p.deviceField(key, req); known {
			return ok
		}
		return p.unknownField(key, updateRequestFields)
	}) && p.done()
}

// deviceField reads the value of key into req when key is a DeviceInfo
// field (known), reporting whether the fast path could read it.
func (p *jsonScan) deviceField(key []byte, req *ota.DeviceInfo) (ok, known bool) {
	var dst *string
	var flag **bool
	switch string(key) {
	case "platform":
		dst = &req.Platform
	case "device_id":
		dst = &req.DeviceID
	case "app_id":
		dst = &req.AppID
	case "custom_id":
		dst = &req.CustomID
	case "version_build":
		dst = &req.VersionBuild
	case "version_code":
		dst = &req.VersionCode
	case "version_os":
		dst = &req.VersionOS
	case "version_name":
		dst = &req.VersionName
	case "plugin_version":
		dst = &req.PluginVersion
	case "install_source":
		dst = &req.InstallSource
	case "defaultChannel":
		dst = &req.DefaultChannel
	case "key_id":
		dst = &req.KeyID
	case "channel":
		dst = &req.Channel
	case "is_emulator":
		flag = &req.IsEmulator
	case "is_prod":
		flag = &req.IsProd
	default:
		return false, false
	}
	if dst != nil {
		return p.stringInto(dst), true
	}
	switch {
	case p.lit("true"):
		*flag = &jsonTrue
	case p.lit("false"):
		*flag = &jsonFalse
	case p.lit("null"):
		*flag = nil
	default:
		return false, true
	}
	return true, true
}

// unknownField skips the value of a key the decoder does not read. A key
// that matches a known one in another case goes to encoding/json, which
// matches keys case-insensitively.
func (p *jsonScan) unknownField(key []byte, known []string) bool {
	for _, f := range known {
		if bytes.EqualFold(key, []byte(f)) {
			return false
		}
	}
	return p.skipValue(0)
}

// stringInto reads a plain string into dst; null leaves dst as it is, as
// encoding/json does.
func (p *jsonScan) stringInto(dst *string) bool {
	if p.lit("null") {
		return true
	}
	start := p.i + 1
	s, ok := p.plainString()
	if !ok {
		return false
	}
	if p.s != "" {
		*dst = p.s[start : start+len(s)]
	} else {
		*dst = string(s)
	}
	return true
}

// object reads {"key":value,...}, calling field with each key once the
// colon is read; field must read the value.
func (p *jsonScan) object(field func(key []byte) bool) bool {
	if !p.lit("{") {
		return false
	}
	if p.lit("}") {
		return true
	}
	for {
		key, ok := p.plainString()
		if !ok || !p.lit(":") || !field(key) {
			return false
		}
		if p.lit(",") {
			continue
		}
		return p.lit("}")
	}
}

// decodeStatsEvents decodes a /stats body that is an array of events, as
// the plugin sends it, with the same fast path as update checks: every
// device sends its events in batches, and encoding/json was most of the
// CPU of storing them. Anything else goes to encoding/json.
//
// raws[i], when not nil, is event i's JSON as sent: it has only fields of
// ota.StatsEvent and decodes to evs[i], so the store may keep it instead
// of encoding the event again. raws is nil when encoding/json decoded.
func decodeStatsEvents(data []byte) (evs []ota.StatsEvent, raws [][]byte, err error) {
	if evs, raws, ok := fastStatsEvents(data); ok {
		return evs, raws, nil
	}
	err = json.Unmarshal(data, &evs)
	return evs, nil, err
}

// decodeStatsEvent decodes a /stats body that is a single event into a
// zero ev (old plugins send one event a request). raw is as for
// decodeStatsEvents.
func decodeStatsEvent(data []byte, ev *ota.StatsEvent) (raw []byte, err error) {
	p := jsonScan{b: data}
	if ok, known := p.statsEvent(ev); ok && p.done() {
		if known {
			raw = data
		}
		return raw, nil
	}
	*ev = ota.StatsEvent{}
	return nil, json.Unmarshal(data, ev)
}

// fastStatsEvents reads an array of plain stats events; ok is false when
// data needs the full decoder.
func fastStatsEvents(data []byte) (evs []ota.StatsEvent, raws [][]byte, ok bool) {
	p := jsonScan{b: data}
	if !p.lit("[") {
		return nil, nil, false
	}
	if p.lit("]") {
		return []ota.StatsEvent{}, nil, p.done()
	}
	// Sized from the plugin's usual batch; append grows it otherwise.
	n := min(bytes.Count(data, []byte(`"action"`)), maxStatsEvents+1)
	evs, raws = make([]ota.StatsEvent, 0, n), make([][]byte, 0, n)
	for {
		evs = append(evs, ota.StatsEvent{})
		start := p.i
		ok, known := p.statsEvent(&evs[len(evs)-1])
		if !ok {
			return nil, nil, false
		}
		var raw []byte
		if known {
			raw = data[start:p.i:p.i]
		}
		raws = append(raws, raw)
		if p.lit(",") {
			continue
		}
		if p.lit("]") && p.done() {
			return evs, raws, true
		}
		return nil, nil, false
	}
}

// statsEvent reads one event object into a zero ev; known is false when
// the object has a field ota.StatsEvent does not.
func (p *jsonScan) statsEvent(ev *ota.StatsEvent) (ok, known bool) {
	known = true
	ok = p.object(func(key []byte) bool {
		if ok, known := p.deviceField(key, &ev.DeviceInfo); known {
			return ok
		}
		switch string(key) {
		case "action":
			return p.stringInto(&ev.Action)
		case "old_version_name":
			return p.stringInto(&ev.OldVersionName)
		case "timestamp":
			if p.lit("null") {
				return true
			}
			n, ok := p.int64()
			if ok {
				ev.Timestamp = n
			}
			return ok
		case "metadata":
			return p.metadata(&ev.Metadata)
		}
		known = false
		return p.unknownField(key, statsEventFields)
	})
	return ok, known
}

// metadata reads an object of plain strings into *m. Like encoding/json,
// it adds to a map a repeated key already made, and null sets it to nil.
func (p *jsonScan) metadata(m *map[string]string) bool {
	if p.lit("null") {
		*m = nil
		return true
	}
	if *m == nil && len(p.b)-p.i > 0 && p.b[p.i] == '{' {
		*m = map[string]string{}
	}
	return p.object(func(key []byte) bool {
		if p.lit("null") {
			return false // encoding/json stores "" for it; rare enough for the slow path
		}
		v, ok := p.plainString()
		if ok {
			(*m)[string(key)] = string(v)
		}
		return ok
	})
}

// int64 reads an integer that fits an int64 without a fraction or an
// exponent (anything else goes to encoding/json, which refuses or
// converts it).
func (p *jsonScan) int64() (int64, bool) {
	neg := p.lit("-")
	j := p.i
	if !p.digits() || p.i-j > 18 || (p.i-j > 1 && p.b[j] == '0') {
		return 0, false
	}
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return 0, false
	}
	var n int64
	for _, c := range p.b[j:p.i] {
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// jsonTrue and jsonFalse are shared by every decoded request: handlers
// only read through the pointers.
var jsonTrue, jsonFalse = true, false

var updateRequestFields = []string{
	"platform", "device_id", "app_id", "custom_id", "version_build", "version_code", "version_os",
	"version_name", "plugin_version", "is_emulator", "is_prod", "install_source", "defaultChannel",
	"key_id", "channel",
}

var statsEventFields = append([]string{"action", "old_version_name", "timestamp", "metadata"}, updateRequestFields...)

// jsonScan reads the plain JSON subset the fast decoders accept. It
// rejects what it does not handle, never what is invalid.
type jsonScan struct {
	b []byte
	i int
	// s, when set, is b as a string: strings read are cut from it rather
	// than copied. Only for values that do not outlive the body's use:
	// stats events feed long-lived maps (device health), so they copy.
	s string
}

func (p *jsonScan) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

func (p *jsonScan) done() bool { return p.i == len(p.b) }

// plainString reads a string of printable ASCII without escapes.
func (p *jsonScan) plainString() ([]byte, bool) {
	if !p.lit(`"`) {
		return nil, false
	}
	for j := p.i; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			s := p.b[p.i:j]
			p.i = j + 1
			return s, true
		case c < 0x20 || c >= 0x80 || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// maxSkipDepth bounds the nesting of skipped values (encoding/json allows
// 10000; a device has no reason to send more than a few).
const maxSkipDepth = 32

// skipValue passes over one complete value of a field otad does not read,
// checking it is valid JSON of the plain subset.
func (p *jsonScan) skipValue(depth int) bool {
	if p.i >= len(p.b) || depth > maxSkipDepth {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		_, ok := p.plainString()
		return ok
	case c == '{':
		p.i++
		if p.lit("}") {
			return true
		}
		for {
			if _, ok := p.plainString(); !ok || !p.lit(":") || !p.skipValue(depth+1) {
				return false
			}
			if p.lit("}") {
				return true
			}
			if !p.lit(",") {
				return false
			}
		}
	case c == '[':
		p.i++
		if p.lit("]") {
			return true
		}
		for {
			if !p.skipValue(depth + 1) {
				return false
			}
			if p.lit("]") {
				return true
			}
			if !p.lit(",") {
				return false
			}
		}
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return false
}

// number reads a JSON number (RFC 8259 grammar).
func (p *jsonScan) number() bool {
	p.lit("-")
	switch {
	case p.lit("0"):
	case p.i < len(p.b) && p.b[p.i] >= '1' && p.b[p.i] <= '9':
		p.digits()
	default:
		return false
	}
	if p.lit(".") && !p.digits() {
		return false
	}
	if p.lit("e") || p.lit("E") {
		if !p.lit("+") {
			p.lit("-")
		}
		if !p.digits() {
			return false
		}
	}
	return true
}

// digits reads one or more digits.
func (p *jsonScan) digits() bool {
	j := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > j
}
