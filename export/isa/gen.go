package isa

// The C header and the Markdown reference are checked in so that hardware and
// documentation readers need no Go toolchain; TestGeneratedFilesUpToDate
// fails when they fall behind the table.
//go:generate go run ./internal/gen -header vitc_isa.h -markdown ../../docs/isa.md
