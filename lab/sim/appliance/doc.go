// Package appliance builds and runs `wfplab sim appliance`: a simulated Windows guest (package
// sim) booted in a real VM, so the qemu provider is proven on real VMs without Windows images.
//
// # What is built (Build)
//
//   - Debian's kernel: the linux-image-6.1.0-NN-amd64 package that linux-image-amd64 depends
//     on, fetched with `apt-get download` and unpacked with `dpkg-deb -x` into
//     <user cache>/wfplab/kernel/<package>/ (or taken from a .deb or unpacked tree the caller
//     names). Only vmlinuz and the modules below are kept.
//   - An initramfs (cpio newc, gzip -1) whose /init is the wfplab executable itself; when that
//     is dynamically linked, its loader and DT_NEEDED libraries too; the modules and their load
//     order (lib/modules/wfplab/order); the target it was built for (etc/wfplab/target); the
//     folders dev, proc, sys, tmp and the node /dev/console. It is cached under
//     <user cache>/wfplab/appliance/<key>/, key = SHA-256 of the executable, kernel version,
//     target: a rebuilt wfplab gives a new one.
//
// In Debian's kernel virtio is modular. /init loads, with finit_module, the modules of
// Modules and their dependencies (from each .ko's .modinfo "depends="), dependencies first:
// failover, net_failover, virtio_ring, virtio, virtio_net, virtio_blk, virtio_pci_legacy_dev,
// virtio_pci_modern_dev, virtio_pci (virtio before virtio_ring fails: "Unknown symbol"), then
// button and evdev, so QMP system_powerdown (the ACPI power button) powers the guest off
// cleanly: state saved, then power-off, and QEMU exits.
//
// # What /init does (Init, when wfplab runs as PID 1)
//
// It mounts devtmpfs, proc, sysfs and a tmpfs on /tmp; sends its output and the Go runtime's
// to /dev/console (QEMU's -serial, ttyS0); loads the modules; sets lo up and eth0 to user-mode
// networking's 10.0.2.15/24 with a default route via 10.0.2.2 (ioctls and rtnetlink, no
// tools); sets the links of further NICs (eth1, eth2: the forward path) up; reads its
// parameters from /proc/cmdline (Params); loads the machine's state from the state disk; and
// runs the simulated guest on 0.0.0.0 with fixed ports: WinRM 5985, stream TCP 5001, control
// UDP 5002, forward UDP 5003. hostfwd delivers to 10.0.2.15, not to 127.0.0.1 in the guest,
// which is why the guest listens on all addresses (sim.Config.InVM; `sim serve` on a host
// stays loopback-only). The WinRM account is the simulator's default, vagrant / vagrant: no
// secret goes on the kernel command line. A fatal error is printed on the console and powers
// the VM off rather than panicking the kernel.
//
// A watchdog asks the guest's own WinRM listener over loopback every 5 s; after two asks in a
// row without an answer it writes, once per boot, the goroutines, the NICs' packet counters
// and free memory to the kernel log at KERN_ERR (past "quiet"): that path polls the UART, so
// the report reaches console.log even when the console tty itself is what stalled. It is how
// a guest that stopped answering mid-run (GUEST_HUNG without wfplab.hang_pool_mb) explains
// itself; test.sh prints it when the appliance scenario fails.
//
// # State disk
//
// The VM gets a blank raw virtio disk (/dev/vda, 16 MiB or more; QEMU -drive
// file=state.img,format=raw,if=virtio). What Windows keeps across a reboot (files, registry,
// services, bcdedit settings, installed updates; sim's SaveState) is written to it raw, in two
// alternating slots with a header, sequence number and CRC-32C (StateDisk), half a second
// after WinRM commands and at once before a power cycle; it is loaded at boot. Pool, driver
// running state and samplers start fresh each boot, as on Windows. The simulated
// `shutdown /r` saves, syncs and calls reboot(2); QEMU (without -no-reboot) restarts the VM.
// `shutdown /s` powers off. Without a disk the guest runs and keeps nothing.
//
// # Hang
//
// wfplab.hang_pool_mb=N makes the guest stop answering (WinRM holds every request, samplers
// stop) once its simulated nonpaged pool passes N MiB: the bug's real outcome, to test
// GUEST_HUNG. `wfplab sim serve --hang-pool-mb` does the same on a host.
//
// # Measured (TCG, 1 vCPU, 512 MiB, QEMU 7.2, Debian 12 kernel 6.1.0-57, 21.7 MB initramfs)
//
// QEMU start to WinRM answering `wmic` through hostfwd: 8.8-9.4 s (13 s while other tests
// loaded both cores); `shutdown /r /t 0` to WinRM answering again after the real reboot:
// 9.0-9.8 s (14 s loaded); a command 26-50 ms (TestApplianceBootsAndRebootsUnderQEMU logs
// the figures of each run). Under KVM guests make no progress on this project's machines.
package appliance
