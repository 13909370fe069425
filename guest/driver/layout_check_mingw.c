/*
 * Compiled with -fsyntax-only by the Makefile: checks the offsets that
 * wfpk.h asserts against mingw-w64's own user-mode fwpmtypes.h, a second,
 * independent transcription of Microsoft's headers. If the two disagreed,
 * one of them would be wrong and the build stops here.
 */
#include <windows.h>
#include <fwpmu.h>
#include <stddef.h>

#define OFF(type, member) offsetof(type, member)

#if defined(_WIN64)
_Static_assert(sizeof(FWP_VALUE0) == 16, "FWP_VALUE0");
_Static_assert(sizeof(FWP_CONDITION_VALUE0) == 16, "FWP_CONDITION_VALUE0");
_Static_assert(OFF(FWPM_SESSION0, flags) == 32 && OFF(FWPM_SESSION0, sid) == 48 &&
               OFF(FWPM_SESSION0, kernelMode) == 64 && sizeof(FWPM_SESSION0) == 72, "FWPM_SESSION0");
_Static_assert(OFF(FWPM_SUBLAYER0, flags) == 32 && OFF(FWPM_SUBLAYER0, providerKey) == 40 &&
               OFF(FWPM_SUBLAYER0, weight) == 64 && sizeof(FWPM_SUBLAYER0) == 72, "FWPM_SUBLAYER0");
_Static_assert(OFF(FWPM_CALLOUT0, applicableLayer) == 64 && OFF(FWPM_CALLOUT0, calloutId) == 80 &&
               sizeof(FWPM_CALLOUT0) == 88, "FWPM_CALLOUT0");
_Static_assert(OFF(FWPM_FILTER_CONDITION0, conditionValue) == 24 && sizeof(FWPM_FILTER_CONDITION0) == 40,
               "FWPM_FILTER_CONDITION0");
_Static_assert(OFF(FWPM_FILTER0, layerKey) == 64 && OFF(FWPM_FILTER0, subLayerKey) == 80 &&
               OFF(FWPM_FILTER0, weight) == 96 && OFF(FWPM_FILTER0, numFilterConditions) == 112 &&
               OFF(FWPM_FILTER0, filterCondition) == 120 && OFF(FWPM_FILTER0, action) == 128 &&
               OFF(FWPM_FILTER0, rawContext) == 152 && OFF(FWPM_FILTER0, reserved) == 168 &&
               OFF(FWPM_FILTER0, filterId) == 176 && OFF(FWPM_FILTER0, effectiveWeight) == 184 &&
               sizeof(FWPM_FILTER0) == 200, "FWPM_FILTER0");
#else
_Static_assert(sizeof(FWP_VALUE0) == 8, "FWP_VALUE0");
_Static_assert(sizeof(FWP_CONDITION_VALUE0) == 8, "FWP_CONDITION_VALUE0");
_Static_assert(OFF(FWPM_SESSION0, flags) == 24 && OFF(FWPM_SESSION0, sid) == 36 &&
               OFF(FWPM_SESSION0, kernelMode) == 44 && sizeof(FWPM_SESSION0) == 48, "FWPM_SESSION0");
_Static_assert(OFF(FWPM_SUBLAYER0, flags) == 24 && OFF(FWPM_SUBLAYER0, providerKey) == 28 &&
               OFF(FWPM_SUBLAYER0, weight) == 40 && sizeof(FWPM_SUBLAYER0) == 44, "FWPM_SUBLAYER0");
_Static_assert(OFF(FWPM_CALLOUT0, applicableLayer) == 40 && OFF(FWPM_CALLOUT0, calloutId) == 56 &&
               sizeof(FWPM_CALLOUT0) == 60, "FWPM_CALLOUT0");
_Static_assert(OFF(FWPM_FILTER_CONDITION0, conditionValue) == 20 && sizeof(FWPM_FILTER_CONDITION0) == 28,
               "FWPM_FILTER_CONDITION0");
_Static_assert(OFF(FWPM_FILTER0, layerKey) == 40 && OFF(FWPM_FILTER0, subLayerKey) == 56 &&
               OFF(FWPM_FILTER0, weight) == 72 && OFF(FWPM_FILTER0, numFilterConditions) == 80 &&
               OFF(FWPM_FILTER0, filterCondition) == 84 && OFF(FWPM_FILTER0, action) == 88 &&
               OFF(FWPM_FILTER0, rawContext) == 112 && OFF(FWPM_FILTER0, reserved) == 128 &&
               OFF(FWPM_FILTER0, filterId) == 136 && OFF(FWPM_FILTER0, effectiveWeight) == 144 &&
               sizeof(FWPM_FILTER0) == 152, "FWPM_FILTER0");
#endif
_Static_assert(OFF(FWPM_ACTION0, calloutKey) == 4 && sizeof(FWPM_ACTION0) == 20, "FWPM_ACTION0");

/* The same constants wfpk.h defines. */
_Static_assert(FWP_ACTION_BLOCK == 0x1001 && FWP_ACTION_CALLOUT_TERMINATING == 0x5003 &&
               FWP_ACTION_CONTINUE == 0x2006, "FWP_ACTION_*");
_Static_assert(FWP_EMPTY == 0 && FWP_UINT8 == 1 && FWP_UINT16 == 2 && FWP_UINT32 == 3 &&
               FWP_V4_ADDR_MASK == 0x100 && FWP_MATCH_EQUAL == 0, "FWP_DATA_TYPE / FWP_MATCH_TYPE");
