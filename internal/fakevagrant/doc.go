// Package fakevagrant is a stand-in for the vagrant CLI, for tests: simulated Windows
// machines (lab/sim) laid out as vagrant/Vagrantfile lays out real ones, driven by the
// subcommands wfplab's vagrant provider uses and answering in Vagrant's real formats
// (machine-readable records, winrm-config). Server holds the machines and records every
// call; the program in ./vagrant, built by the tests and put on PATH as `vagrant`, relays
// its command line to the Server named by WFPLAB_FAKE_VAGRANT and prints the answer.
package fakevagrant
