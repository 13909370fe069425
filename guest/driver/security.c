/*
 * The device's DACL: SYSTEM and Administrators, nobody else. IoCreateDevice
 * gives a legacy device the system's default descriptor, under which any
 * local user could open \\.\WfplabCallout and reset the counters; the WDK's
 * IoCreateDeviceSecure lives in the static wdmsec library, which mingw-w64
 * lacks. So the descriptor is set after creation, through a kernel handle to
 * the device object: ObOpenObjectByPointer, then ZwSetSecurityObject.
 *
 * Own file because it needs ntifs.h (SIDs, ACLs, ZwSetSecurityObject), which
 * the rest of the driver does not.
 */
#include <ntifs.h>

#include "wfplab.h"

/* S-1-5-18 (LocalSystem) and S-1-5-32-544 (BUILTIN\Administrators). */
#define SID_LOCAL_SYSTEM_RID 18
#define SID_BUILTIN_DOMAIN_RID 32
#define SID_ALIAS_ADMINS_RID 544

/* A SID with up to two sub-authorities, aligned for the Rtl functions. */
union sid2 {
    SID sid;
    UCHAR bytes[8 + 2 * sizeof(ULONG)];
};

/* ACL header and two ACCESS_ALLOWED_ACEs, each SidStart replaced by its SID. */
#define ACE_BYTES(subauths) (sizeof(ACCESS_ALLOWED_ACE) - sizeof(ULONG) + 8 + (subauths) * sizeof(ULONG))
#define DACL_BYTES (sizeof(ACL) + ACE_BYTES(1) + ACE_BYTES(2))

static NTSTATUS init_sid(union sid2 *s, ULONG subauths, ULONG first, ULONG second)
{
    SID_IDENTIFIER_AUTHORITY nt = SECURITY_NT_AUTHORITY;
    NTSTATUS status = RtlInitializeSid(&s->sid, &nt, (UCHAR)subauths);

    if (!NT_SUCCESS(status)) {
        return status;
    }
    *RtlSubAuthoritySid(&s->sid, 0) = first;
    if (subauths > 1) {
        *RtlSubAuthoritySid(&s->sid, 1) = second;
    }
    return STATUS_SUCCESS;
}

NTSTATUS wfplab_secure_device(DEVICE_OBJECT *device)
{
    union sid2 system;
    union sid2 admins;
    ULONG dacl[(DACL_BYTES + sizeof(ULONG) - 1) / sizeof(ULONG)];
    SECURITY_DESCRIPTOR sd;
    HANDLE handle = NULL;
    NTSTATUS status;

    status = init_sid(&system, 1, SID_LOCAL_SYSTEM_RID, 0);
    if (NT_SUCCESS(status)) status = init_sid(&admins, 2, SID_BUILTIN_DOMAIN_RID, SID_ALIAS_ADMINS_RID);
    if (NT_SUCCESS(status)) status = RtlCreateAcl((ACL *)dacl, sizeof(dacl), ACL_REVISION);
    if (NT_SUCCESS(status)) status = RtlAddAccessAllowedAce((ACL *)dacl, ACL_REVISION, FILE_ALL_ACCESS, &system.sid);
    if (NT_SUCCESS(status)) status = RtlAddAccessAllowedAce((ACL *)dacl, ACL_REVISION, FILE_ALL_ACCESS, &admins.sid);
    if (NT_SUCCESS(status)) status = RtlCreateSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION);
    if (NT_SUCCESS(status)) status = RtlSetDaclSecurityDescriptor(&sd, TRUE, (ACL *)dacl, FALSE);
    if (!NT_SUCCESS(status)) {
        WFPLAB_LOG("building the device's security descriptor failed: 0x%08lx\n", (unsigned long)status);
        return status;
    }
    status = ObOpenObjectByPointer(device, OBJ_KERNEL_HANDLE, NULL, WRITE_DAC, NULL, KernelMode, &handle);
    if (!NT_SUCCESS(status)) {
        WFPLAB_LOG("ObOpenObjectByPointer(device) failed: 0x%08lx\n", (unsigned long)status);
        return status;
    }
    /* The object manager copies the descriptor: the stack buffers may go. */
    status = ZwSetSecurityObject(handle, DACL_SECURITY_INFORMATION, &sd);
    if (!NT_SUCCESS(status)) {
        WFPLAB_LOG("ZwSetSecurityObject(device) failed: 0x%08lx\n", (unsigned long)status);
    }
    ZwClose(handle);
    return status;
}
