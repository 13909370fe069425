/*
 * The interface between the stand-in fwpkclnt.sys (fwpkclnt_stub.c) and the
 * harness (harness.c, harness_wfp.c): extra exports the real fwpkclnt.sys
 * does not have. Plain C types only, so both the kernel-header side and the
 * windows.h side can include it.
 */
#ifndef WFPLAB_HARNESS_STUB_H
#define WFPLAB_HARNESS_STUB_H

/* The stub's log: one line per fwpkclnt call, "CALL n=<seq> fn=<name> ...",
 * each ending in '\n'. The text stays valid while the stub is loaded. */
typedef const char *(__stdcall *stub_log_fn)(void);

/* Adds a rule: the next `count` FwpsCalloutUnregisterById0 calls for callout
 * `id` (0: any callout) return `status` and leave the callout registered.
 * Rules apply in the order added, up to four. */
typedef void(__stdcall *stub_fail_unregister_fn)(unsigned int id, unsigned int count, long status);

/* The classifyFn of the run-time callout that the filter on `layerKey`
 * calls (filter action -> callout key -> FwpsCalloutRegister0), or NULL when
 * that wiring is missing or the filter or callout is gone. `layerKey` points
 * to a 16-byte GUID. */
typedef void *(__stdcall *stub_classify_for_layer_fn)(const void *layerKey);

/* Objects alive now, as one line: "STATE registered=<run-time callouts>
 * engines=<open> filters=<n> callouts=<n> sublayers=<n> txn=<open>". */
typedef const char *(__stdcall *stub_state_fn)(void);

#endif
