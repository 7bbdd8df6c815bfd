// The first stage's input embeddings on the device, so a decode step can start from the tokens the previous step
// sampled there, before they reach the host (steps ahead). CPU reference: OptModel.embed (token row + position row
// at position + 2), here with the token table in FP16 (the tied LM head's copy) and the position table in FP32.
//
//   tokens     (vocab, width) FP16: token embeddings
//   positions  (max_positions + 2, width) FP32: position embeddings
//   rows       (n, 3) int32 per row: host token, index into `sampled` (or -1: use the host token), position
//   sampled    int32 tokens a sampling pass wrote on the device (read only for rows with an index)
//   hidden     (n, width) FP32 out: the residual stream
//
// One block per row. A token id outside the vocabulary (never produced by the sampler) writes NaN, so a broken
// feed shows in the logits instead of reading another table's memory.
#include "common.cuh"

#define BR_POSITION_OFFSET 2

extern "C" __global__ void br_embed_rows(const __half* tokens, const float* positions, const int* rows,
                                         const int* sampled, float* hidden, int width, int vocab) {
    const int row = blockIdx.x;
    const int fed = rows[row * 3 + 1];
    const int token = fed >= 0 ? sampled[fed] : rows[row * 3];
    const long position = (long) rows[row * 3 + 2] + BR_POSITION_OFFSET;
    float* out = hidden + (long) row * width;
    if (token < 0 || token >= vocab) {
        for (int c = threadIdx.x; c < width; c += blockDim.x) {
            out[c] = __int_as_float(0x7fc00000);
        }
        return;
    }
    const __half* t = tokens + (long) token * width;
    const float* p = positions + position * width;
    for (int c = threadIdx.x; c < width; c += blockDim.x) {
        out[c] = __half2float(t[c]) + p[c];
    }
}
