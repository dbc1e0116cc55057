// Package opterr is the error a library returns when the caller must set an
// option: it names the option by its Go name, and a command line names its
// flag instead, from the same value, without rewriting message text.
package opterr

import "fmt"

// Error says what went wrong and which option would settle it.
type Error struct {
	// What happened, without advice ("checkpoint W: dim 96 is not a
	// multiple of timm's head width 64").
	What string
	// Advice says what to do, with one %s for the option ("give the head
	// count with %s").
	Advice string
	// Option is the option's Go name ("LoadOptions.Heads").
	Option string
	// Kind, when set, is a sentinel errors.Is matches.
	Kind error
}

func (e *Error) Error() string { return e.What + ": " + fmt.Sprintf(e.Advice, e.Option) }

// Is matches e's sentinel.
func (e *Error) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// With is the same error advising a flag ("--heads N") instead of the
// option; errors.Is still matches its sentinel.
func (e *Error) With(flag string) error {
	return &flagged{msg: e.What + ": " + fmt.Sprintf(e.Advice, flag), kind: e.Kind}
}

type flagged struct {
	msg  string
	kind error
}

func (f *flagged) Error() string        { return f.msg }
func (f *flagged) Is(target error) bool { return f.kind != nil && target == f.kind }
