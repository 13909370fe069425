// Package guest holds what runs inside the Windows guests: the WFP test callout driver
// (driver/, C, WDM) and the sampling agent (agent/, C), cross-built with Debian's
// mingw-w64 and test-signed with osslsigncode by `make -C guest`.
//
// The Go side is small: embed.go hands the committed, signed binaries in dist/ to the
// lab, which uploads them to guests (real or simulated), and the tests check the built
// PE files structurally (machine, subsystem, entry point, imports, signature), that
// dist/ matches a fresh build of the sources, and that the agent's lines follow
// agent/FORMAT.md as the lab's parser reads it.
package guest
