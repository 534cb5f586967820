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
	*req = ota.UpdateRequest{}
	return json.Unmarshal(data, req)
}

// fastUpdateRequest reports false when data needs the full decoder; req
// may then hold partial values.
func fastUpdateRequest(data []byte, req *ota.UpdateRequest) bool {
	p := jsonScan{b: data}
	if !p.lit("{") {
		return false
	}
	if p.lit("}") {
		return p.done()
	}
	for {
		key, ok := p.plainString()
		if !ok || !p.lit(":") {
			return false
		}
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
			for _, f := range updateRequestFields {
				if bytes.EqualFold(key, []byte(f)) {
					return false // encoding/json matches keys in any case
				}
			}
			if !p.skipValue(0) {
				return false
			}
		}
		switch {
		case dst != nil:
			if p.lit("null") {
				break // encoding/json leaves the field as it is: empty
			}
			s, ok := p.plainString()
			if !ok {
				return false
			}
			*dst = string(s)
		case flag != nil:
			switch {
			case p.lit("true"):
				*flag = &jsonTrue
			case p.lit("false"):
				*flag = &jsonFalse
			case p.lit("null"):
				*flag = nil
			default:
				return false
			}
		}
		if p.lit(",") {
			continue
		}
		if p.lit("}") {
			return p.done()
		}
		return false
	}
}

// jsonTrue and jsonFalse are shared by every decoded request: handlers
// only read through the pointers.
var jsonTrue, jsonFalse = true, false

var updateRequestFields = []string{
	"platform", "device_id", "app_id", "custom_id", "version_build", "version_code", "version_os",
	"version_name", "plugin_version", "is_emulator", "is_prod", "install_source", "defaultChannel",
	"key_id", "channel",
}

// jsonScan reads the plain JSON subset fastUpdateRequest accepts. It
// rejects what it does not handle, never what is invalid.
type jsonScan struct {
	b []byte
	i int
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
