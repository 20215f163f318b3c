package audit

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendEventJSON appends e as one JSON object, members in the struct's field order with the
// struct's omitempty rules, and the "hash" member last with an empty value. It produces the
// same bytes as encoding/json.Marshal (a test holds it to that) without reflection or
// allocations: it runs on every audited call.
func appendEventJSON(b []byte, e *Event) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(e.V), 10)
	b = append(b, `,"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","kind":`...)
	b = appendString(b, e.Kind)
	b = appendOptString(b, `,"request_id":`, e.RequestID)
	b = append(b, `,"identity":{`...)
	n := len(b)
	b = appendOptString(b, `,"subject":`, e.Identity.Subject)
	b = appendOptString(b, `,"email":`, e.Identity.Email)
	b = appendOptStrings(b, `,"groups":`, e.Identity.Groups)
	if len(b) > n { // drop the leading comma of the first member
		copy(b[n:], b[n+1:])
		b = b[:len(b)-1]
	}
	b = append(b, '}')
	b = appendOptString(b, `,"target":`, e.Target)
	b = appendOptString(b, `,"cloud":`, e.Cloud)
	b = appendOptString(b, `,"action":`, e.Action)
	b = appendOptString(b, `,"service":`, e.Service)
	b = appendOptString(b, `,"operation":`, e.Operation)
	b = appendOptString(b, `,"resource":`, e.Resource)
	b = appendOptString(b, `,"source":`, e.Source)
	if len(e.Also) > 0 {
		b = append(b, `,"also":[`...)
		for i, p := range e.Also {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"action":`...)
			b = appendString(b, p.Action)
			b = appendOptString(b, `,"resource":`, p.Resource)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendOptString(b, `,"region":`, e.Region)
	b = appendOptString(b, `,"risk":`, e.Risk)
	b = appendOptString(b, `,"decision":`, e.Decision)
	b = appendOptString(b, `,"policy":`, e.Policy)
	b = appendOptStrings(b, `,"approvers":`, e.Approvers)
	b = appendOptString(b, `,"reason":`, e.Reason)
	if e.UpstreamStatus != 0 {
		b = append(b, `,"upstream_status":`...)
		b = strconv.AppendInt(b, int64(e.UpstreamStatus), 10)
	}
	if e.DurationMS != 0 && !math.IsNaN(e.DurationMS) && !math.IsInf(e.DurationMS, 0) {
		b = append(b, `,"duration_ms":`...)
		b = appendFloat(b, e.DurationMS)
	}
	b = appendOptString(b, `,"client_ip":`, e.ClientIP)
	b = appendOptString(b, `,"user_agent":`, e.UserAgent)
	b = appendOptString(b, `,"step":`, e.Step)
	b = appendOptString(b, `,"approval_id":`, e.ApprovalID)
	b = appendOptString(b, `,"comment":`, e.Comment)
	b = appendOptString(b, `,"error":`, e.Error)
	b = appendOptString(b, `,"replica":`, e.Replica)
	b = appendOptString(b, `,"replica_prev_hash":`, e.ReplicaPrevHash)
	b = append(b, `,"prev_hash":`...)
	b = appendString(b, e.PrevHash)
	b = append(b, hashMemberEmpty...)
	return b
}

func appendOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, key...)
	return appendString(b, s)
}

func appendOptStrings(b []byte, key string, ss []string) []byte {
	if len(ss) == 0 {
		return b
	}
	b = append(b, key...)
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendFloat formats like encoding/json (ES6 number formatting).
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does by default: HTML-sensitive characters and the
// JavaScript line separators escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
