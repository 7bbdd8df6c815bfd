// The one translation unit nvcc compiles into bitrelay.fatbin: every kernel file, included once.
// Each file keeps one job; this list is the whole kernel inventory loaded by CudaKernels.
#include "quantize_rows.cu"
#include "dequantize.cu"
#include "layernorm.cu"
#include "fill_random.cu"
#include "attention.cu"
#include "stage_epilogues.cu"
#include "link_codecs.cu"
#include "w8a8_epilogues.cu"
#include "sampling.cu"
#include "embed.cu"
