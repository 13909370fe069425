// Package qemu is the lab's hypervisor: it boots each target as a QEMU virtual machine
// over a copy-on-write overlay of a pristine base image (or by direct kernel boot, for the
// simulated-Windows appliance), with user-mode networking only, every host socket on
// 127.0.0.1, the serial console logged to the run folder from boot, and control over QMP
// (github.com/digitalocean/go-qemu).
//
// Layout of a run folder, per target (RunDir/vm/<target>/):
//
//	disk.qcow2        overlay over the base image; removed by Down unless KeepVMs
//	state.raw         blank state disk (StateDiskMB > 0); removed by Down unless KeepVMs
//	console.log       serial console from boot; always kept
//	qemu.log          QEMU's own stderr; always kept
//	screendump-N.png  screenshots taken by contract.Evidence/Recover; always kept
//	qmp.sock, qemu.pid, owner.pid   removed by Down
//
// No QEMU outlives the process that started it: QEMU is spawned from one OS thread that is
// locked for the provider's lifetime, with Pdeathsig=SIGKILL, and ReapStale kills QEMUs of
// earlier runs whose wfplab died without Down (found through their pidfiles).
//
// accel "auto" does not trust /dev/kvm (nested KVM on the project's machines creates
// guests that never run): it boots under KVM and falls back to TCG, with one warning, when
// the guest shows no progress within a probe bound; see accel.go.
//
// The package imports lab only for the contract types (Target, Provider, OS catalog); it
// knows nothing about the simulated guest: an appliance and a Windows image differ only in
// their boot options.
package qemu
