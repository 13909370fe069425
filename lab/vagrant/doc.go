// Package vagrant is the `vagrant` provider: it drives the vagrant CLI (2.2/2.3) over a
// Vagrantfile laid out as vagrant/Vagrantfile is, and hands the lab each machine's WinRM
// endpoint (from `vagrant winrm-config`) and traffic addresses (from the layout: host-only
// address, forward network behind the guest). Every run starts from a named snapshot
// (default "clean"), taken on first use before anything is changed, so a second run starts
// unpatched again. Every call to the CLI is bounded in time and its output goes into the
// error when it fails, with passwords left out.
//
// Vagrant's output formats this package reads are in vagrant/README.md, with their sources.
package vagrant
