package npy

import (
	"errors"
	"fmt"
	"strconv"
)

// maxDepth bounds nesting in the header literal. NumPy's own headers nest
// at most two levels (a structured descr); the bound keeps a hostile header
// of 64 KiB of '(' from recursing deeply.
const maxDepth = 16

// pyValue is the subset of Python literals that can appear in a .npy
// header: str, bool, None, int, and tuple or list of those.
type pyValue struct {
	kind  byte // 's' str, 'b' bool, 'n' None, 'i' int, 't' tuple, 'l' list
	str   string
	boolV bool
	intV  int64
	elems []pyValue
}

func (v pyValue) typeName() string {
	switch v.kind {
	case 's':
		return "a str"
	case 'b':
		return "a bool"
	case 'n':
		return "None"
	case 'i':
		return "an int"
	case 't':
		return "a tuple"
	}
	return "a list"
}

// parseHeader parses the header dict, which NumPy reads with
// ast.literal_eval, and checks it has exactly NumPy's three keys with the
// types NumPy requires.
func parseHeader(h []byte) (descr string, fortran bool, shape []int64, err error) {
	p := &pyParser{s: h}
	p.space()
	if !p.eat('{') {
		return "", false, nil, errors.New("not a Python dict literal")
	}
	d := map[string]pyValue{}
	for {
		p.space()
		if p.eat('}') {
			break
		}
		k, err := p.value(0)
		if err != nil {
			return "", false, nil, err
		}
		if k.kind != 's' {
			return "", false, nil, fmt.Errorf("dict key is %s, not a str", k.typeName())
		}
		p.space()
		if !p.eat(':') {
			return "", false, nil, p.errorf("expected ':' after key %q", k.str)
		}
		p.space()
		v, err := p.value(0)
		if err != nil {
			return "", false, nil, err
		}
		// Python would keep the last value; a header that says two things
		// is corrupt, so refuse rather than pick one.
		if _, dup := d[k.str]; dup {
			return "", false, nil, fmt.Errorf("duplicate key %q", k.str)
		}
		d[k.str] = v
		p.space()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			break
		}
		return "", false, nil, p.errorf("expected ',' or '}'")
	}
	p.space()
	if p.i != len(p.s) {
		return "", false, nil, p.errorf("unexpected text after the dict")
	}

	if len(d) != 3 {
		return "", false, nil, fmt.Errorf("want exactly the keys descr, fortran_order and shape, have %d keys", len(d))
	}
	dv, ok1 := d["descr"]
	fv, ok2 := d["fortran_order"]
	sv, ok3 := d["shape"]
	if !ok1 || !ok2 || !ok3 {
		return "", false, nil, errors.New("want exactly the keys descr, fortran_order and shape")
	}
	if dv.kind != 's' {
		if dv.kind == 'l' {
			return "", false, nil, errors.New("structured dtypes are not supported")
		}
		return "", false, nil, fmt.Errorf("descr is %s, not a str", dv.typeName())
	}
	if fv.kind != 'b' {
		return "", false, nil, fmt.Errorf("fortran_order is %s, not a bool", fv.typeName())
	}
	if sv.kind != 't' {
		return "", false, nil, fmt.Errorf("shape is %s, not a tuple", sv.typeName())
	}
	shape = make([]int64, len(sv.elems))
	for i, e := range sv.elems {
		if e.kind != 'i' {
			return "", false, nil, fmt.Errorf("shape element %d is %s, not an int", i, e.typeName())
		}
		shape[i] = e.intV
	}
	return dv.str, fv.boolV, shape, nil
}

type pyParser struct {
	s []byte
	i int
}

func (p *pyParser) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s", p.i, fmt.Sprintf(format, args...))
}

// space skips the whitespace Python allows inside brackets, where line
// breaks are implicitly joined.
func (p *pyParser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r', '\f':
			p.i++
		default:
			return
		}
	}
}

func (p *pyParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *pyParser) word(w string) bool {
	if len(p.s)-p.i < len(w) || string(p.s[p.i:p.i+len(w)]) != w {
		return false
	}
	// "Truex" is a name, not True.
	if j := p.i + len(w); j < len(p.s) && isIdent(p.s[j]) {
		return false
	}
	p.i += len(w)
	return true
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

func (p *pyParser) value(depth int) (pyValue, error) {
	if depth > maxDepth {
		return pyValue{}, p.errorf("nested more than %d deep", maxDepth)
	}
	if p.i >= len(p.s) {
		return pyValue{}, p.errorf("unexpected end of header")
	}
	switch c := p.s[p.i]; {
	case c == '\'' || c == '"':
		return p.str()
	case c == 'u' && p.i+1 < len(p.s) && (p.s[p.i+1] == '\'' || p.s[p.i+1] == '"'):
		p.i++ // u'...' from Python 2 era writers means the same as '...'
		return p.str()
	case c == '(' || c == '[':
		return p.seq(depth)
	case c == '-' || c >= '0' && c <= '9':
		return p.int()
	case p.word("True"):
		return pyValue{kind: 'b', boolV: true}, nil
	case p.word("False"):
		return pyValue{kind: 'b'}, nil
	case p.word("None"):
		return pyValue{kind: 'n'}, nil
	}
	return pyValue{}, p.errorf("unexpected %q", p.s[p.i])
}

func (p *pyParser) str() (pyValue, error) {
	q := p.s[p.i]
	start := p.i + 1
	for j := start; j < len(p.s); j++ {
		switch p.s[j] {
		case q:
			p.i = j + 1
			return pyValue{kind: 's', str: string(p.s[start:j])}, nil
		case '\\':
			// No NumPy header needs an escape; supporting them would only
			// widen what a corrupt header can make us accept.
			return pyValue{}, p.errorf("escape sequences in strings are not supported")
		case '\n':
			return pyValue{}, p.errorf("unterminated string")
		}
	}
	return pyValue{}, p.errorf("unterminated string")
}

func (p *pyParser) int() (pyValue, error) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
		p.space() // literal_eval accepts "- 1"
	}
	digits := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	if p.i == digits {
		return pyValue{}, p.errorf("expected digits")
	}
	text := string(p.s[digits:p.i])
	// Python 2 era NumPy wrote long ints as 3L; NumPy still reads them.
	if p.i < len(p.s) && (p.s[p.i] == 'L' || p.s[p.i] == 'l') {
		p.i++
	}
	if p.i < len(p.s) && isIdent(p.s[p.i]) {
		return pyValue{}, p.errorf("malformed number %q", p.s[start:p.i+1])
	}
	v, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return pyValue{}, fmt.Errorf("integer %s is out of range", truncateStr(text, 40))
	}
	if p.s[start] == '-' {
		v = -v
	}
	return pyValue{kind: 'i', intV: v}, nil
}

func truncateStr(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// seq parses a tuple or list. A parenthesised single value without a comma
// is not a tuple in Python, and NumPy rejects (6) as a shape; so do we.
func (p *pyParser) seq(depth int) (pyValue, error) {
	open := p.s[p.i]
	closer, kind := byte(')'), byte('t')
	if open == '[' {
		closer, kind = ']', 'l'
	}
	p.i++
	v := pyValue{kind: kind, elems: []pyValue{}}
	sawComma := false
	for {
		p.space()
		if p.eat(closer) {
			break
		}
		e, err := p.value(depth + 1)
		if err != nil {
			return pyValue{}, err
		}
		v.elems = append(v.elems, e)
		p.space()
		if p.eat(',') {
			sawComma = true
			continue
		}
		if p.eat(closer) {
			break
		}
		return pyValue{}, p.errorf("expected ',' or %q", closer)
	}
	if kind == 't' && len(v.elems) == 1 && !sawComma {
		return v.elems[0], nil
	}
	return v, nil
}
