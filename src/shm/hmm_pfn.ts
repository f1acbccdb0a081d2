/**
 * hmm_range_fault() request and result flags (include/linux/hmm.h,
 * HMM_PFN_*). They cross the page-request mailbox (src/shm/tlb_layout.ts)
 * in every reply entry, so both sides import them from here.
 */

/** Request flags, per page: fault the page in, for write. 0 = snapshot. */
export const HMM_PFN_REQ_FAULT = 1;
export const HMM_PFN_REQ_WRITE = 2;

/** Result flags, per page. */
export const HMM_PFN_VALID = 1;
export const HMM_PFN_WRITE = 2;
export const HMM_PFN_ERROR = 4;
/** The address is a peer device's bus address (RFC: P2P mapping). */
export const HMM_PFN_P2P = 8;
/** The page is device-private memory (HMM migrated); devAddr is an offset in its owner's memory. */
export const HMM_PFN_DEVICE_PRIVATE = 16;
/** The shared zero page. */
export const HMM_PFN_ZERO = 32;
