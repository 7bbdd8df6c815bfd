package io.bitrelay.runtime.cuda.cublaslt;

/**
 * Operand, output and arithmetic types of a GEMM {@code Y[M,N] = X[M,K] · W[N,K]^T}, with cuBLAS's enum values
 * (cudaDataType_t, cublasComputeType_t).
 */
public enum GemmPrecision {
    /** W8A8: INT8 operands, exact INT32 accumulators out (IMMA), dequantized by our epilogue kernel. */
    INT8_INT32("int8->int32", CudaDataType.R_8I, CudaDataType.R_32I, ComputeType.COMPUTE_32I, CudaDataType.R_32I),
    /** INT8 operands, INT8 out: saturate(rint(alpha · acc)); half the output bytes, needs a static output scale. */
    INT8_INT8("int8->int8", CudaDataType.R_8I, CudaDataType.R_8I, ComputeType.COMPUTE_32I, CudaDataType.R_32F),
    /** The FP16 baseline: FP16 operands and output, FP32 accumulation (what torch.matmul uses by default). */
    FP16("fp16", CudaDataType.R_16F, CudaDataType.R_16F, ComputeType.COMPUTE_32F, CudaDataType.R_32F);

    private final String label;
    final int inputType;
    final int outputType;
    final int computeType;
    final int scaleType;

    GemmPrecision(String label, int inputType, int outputType, int computeType, int scaleType) {
        this.label = label;
        this.inputType = inputType;
        this.outputType = outputType;
        this.computeType = computeType;
        this.scaleType = scaleType;
    }

    public String label() {
        return label;
    }

    public int inputBytes() {
        return CudaDataType.bytes(inputType);
    }

    public int outputBytes() {
        return CudaDataType.bytes(outputType);
    }

    /** cudaDataType_t values (library_types.h). */
    static final class CudaDataType {
        static final int R_32F = 0;
        static final int R_16F = 2;
        static final int R_8I = 3;
        static final int R_32I = 10;

        private CudaDataType() {
        }

        static int bytes(int type) {
            return switch (type) {
                case R_8I -> 1;
                case R_16F -> 2;
                case R_32F, R_32I -> 4;
                default -> throw new IllegalArgumentException("cudaDataType " + type);
            };
        }
    }

    /** cublasComputeType_t values (cublas_api.h). */
    static final class ComputeType {
        static final int COMPUTE_32F = 68;
        static final int COMPUTE_32I = 72;

        private ComputeType() {
        }
    }
}
