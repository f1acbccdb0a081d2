/**
 * Queue opcodes of the camera and the colour-correction engine, shared by
 * the device models (workers/camera.ts, workers/colour_correction.ts) and
 * their drivers (src/workloads/camera_chain/run.ts). Constants only.
 */

/** Camera: render frame args[0] and DMA it to bus address dst. */
export const CAMERA_OP_CAPTURE = 1;
/** Camera, bound to a process: write the frame to VA dst, then drive the engine's queue (P2P). */
export const CAMERA_OP_CAPTURE_CHAINED = 2;
/** Colour correction: DMA in from src, transform, DMA out to dst. */
export const CC_OP_PROCESS = 1;
/** Colour correction with the input already in its own memory at byte offset src. */
export const CC_OP_PROCESS_LOCAL = 2;

/** PROCESS_LOCAL args[1] flag: dst is a virtual address of the process the engine is bound to (a final buffer in a third device's BAR). */
export const CC_F_DST_VA = 1;
/** CAPTURE_CHAINED argument positions. */
export const CAM_ARG_FRAME = 0;
export const CAM_ARG_SEED = 1;
export const CAM_ARG_WIDTH = 2;
/** Offset of the input buffer in the engine's own memory. */
export const CAM_ARG_INPUT = 3;
/** PROCESS_LOCAL flags the camera puts in the engine's ring entry (CC_F_*). */
export const CAM_ARG_CC_FLAGS = 4;
