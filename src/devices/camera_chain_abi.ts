/**
 * Queue opcodes of the camera and the colour-correction engine, shared by
 * the device models (workers/camera.ts, workers/colour_correction.ts) and
 * their drivers (src/workloads/camera_chain/run.ts), and the definitions
 * of what the two compute (the sensor pattern, the colour parameters),
 * which the workload's references recompute on their own. Constants and
 * types only.
 */

/** Camera: render frame args[0] and DMA it to bus address dst. */
export const CAMERA_OP_CAPTURE = 1;
/** Camera, bound to a process: write the frame to VA dst, then drive the engine's queue (P2P). */
export const CAMERA_OP_CAPTURE_CHAINED = 2;
/** Colour correction: DMA in from src, transform, DMA out to dst. */
export const CC_OP_PROCESS = 1;
/** Colour correction with the input already in its own memory at byte offset src. */
export const CC_OP_PROCESS_LOCAL = 2;

/** PROCESS and PROCESS_LOCAL argument positions: the frame number (the completion's result), PROCESS_LOCAL's CC_F_* flags. */
export const CC_ARG_FRAME = 0;
export const CC_ARG_FLAGS = 1;
/** PROCESS_LOCAL CC_ARG_FLAGS flag: dst is a virtual address of the process the engine is bound to (a final buffer in a third device's BAR). */
export const CC_F_DST_VA = 1;
/** CAPTURE and CAPTURE_CHAINED argument positions (CAPTURE takes the first three). */
export const CAM_ARG_FRAME = 0;
export const CAM_ARG_SEED = 1;
export const CAM_ARG_WIDTH = 2;
/** Offset of the input buffer in the engine's own memory. */
export const CAM_ARG_INPUT = 3;
/** PROCESS_LOCAL flags the camera puts in the engine's ring entry (CC_F_*). */
export const CAM_ARG_CC_FLAGS = 4;
/**
 * CAPTURE_CHAINED: where the next frame goes, in pages from dst (0: not
 * known), as a camera's "next frame address" register: the camera faults
 * that buffer in ahead, while it finishes this frame.
 */
export const CAM_ARG_NEXT_PAGES = 5;
/** Argument words of a camera command. */
export const CAM_ARGS = 6;

/**
 * The sensor pattern the camera renders (src/devices/models/frame_pattern.ts)
 * and the checker recomputes (src/workloads/reference/frame_pattern.ts): a
 * moving gradient plus hashed noise, so every channel sweeps all 256 values
 * and neighbouring pixels differ. Pixel p of frame f, width w:
 *
 *   mix(h)  MurmurHash3 finaliser: h ^= h >>> 16; h = imul(h, PAT_MIX_A);
 *           h ^= h >>> 13; h = imul(h, PAT_MIX_B); h ^ h >>> 16
 *   key     mix(imul(seed, PAT_SEED_MUL) ^ imul(f + 1, PAT_FRAME_MUL))
 *           (imul, not `*`: the seed is a u32 on the checker's side and the
 *           i32 of a ring word on the camera's; imul gives both the same low
 *           32 bits, where a double product of a seed >= 2^31 loses them)
 *   n       mix(p ^ key); x = p % w; y = floor(p / w)
 *   R = x + f * PAT_R_PER_FRAME + (n & 15)          (& 255)
 *   G = y * PAT_G_PER_ROW + f * PAT_G_PER_FRAME + ((n >>> 4) & 15)   (& 255)
 *   B = (n >>> 8) & 255;  A = 255 - ((n >>> 16) & 3)
 *   one little-endian RGBA word per pixel (R in the low byte)
 */
export const PAT_MIX_A = 0x85ebca6b;
export const PAT_MIX_B = 0xc2b2ae35;
export const PAT_SEED_MUL = 0x9e3779b1;
export const PAT_FRAME_MUL = 0x27d4eb2f;
export const PAT_R_PER_FRAME = 7;
export const PAT_G_PER_ROW = 2;
export const PAT_G_PER_FRAME = 3;

/**
 * The colour-correction engine's parameters: a 3x3 matrix in Q8 fixed point
 * followed by a per-channel gamma lookup table, in integer arithmetic;
 * alpha passes through.
 *
 *   acc_c = sum_j M[c][j] * in_j          (M row-major, Q8: COLOUR_Q8_ONE = 1.0)
 *   v_c   = clamp((acc_c + COLOUR_Q8_ONE / 2) >> 8, 0, 255)
 *   out_c = LUT[c * 256 + v_c]
 *   LUT[c * 256 + v] = round(255 * (v / 255) ^ (1 / gamma_c))
 *
 * The device derives its tables from the props (src/devices/models/
 * colour.ts) and computes its own way (workers/colour_correction.ts); the
 * checker recomputes from the same props with
 * src/workloads/reference/colour.ts.
 */
export interface ColourParams {
  /** Row-major 3x3 matrix, Q8. */
  readonly matrix: readonly number[];
  /** 3 x 256 entries: the LUT of R, then G, then B. */
  readonly lut: readonly number[];
}

export const COLOUR_Q8_ONE = 256;

/** A mild warm correction; rows sum to 256 so grey stays grey before gamma. */
export const DEFAULT_MATRIX: readonly number[] = [300, -30, -14, -20, 290, -14, -10, -40, 306];
