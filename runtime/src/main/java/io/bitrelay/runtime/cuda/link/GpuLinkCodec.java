package io.bitrelay.runtime.cuda.link;

import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.kernels.LinkCodecKernels;
import io.bitrelay.runtime.tensor.DType;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.RptqLinkCodec;

import java.util.Objects;

/**
 * One link codec on the device: which kernel encodes hidden rows into the codec's params and payload, and which
 * decodes them, with the same bytes as the Java {@link LinkCodec} it wraps (that codec sizes the sections and
 * checks received params). FP16 hidden states through the FP16 codec need no kernel: the rows are the payload.
 * Holds no device memory of its own; an RPTQ codec reads the {@link DeviceClusterPlan} its caller owns.
 */
public final class GpuLinkCodec {
    private final LinkCodec codec;
    private final LinkCodecKernels kernels;
    private final DeviceClusterPlan plan; // RPTQ only
    private final int bits;               // RPTQ only

    private GpuLinkCodec(LinkCodec codec, LinkCodecKernels kernels, DeviceClusterPlan plan, int bits) {
        this.codec = codec;
        this.kernels = kernels;
        this.plan = plan;
        this.bits = bits;
    }

    /** FP16 or INT8: no plan. */
    public static GpuLinkCodec of(LinkCodec codec, LinkCodecKernels kernels) {
        return of(codec, kernels, null);
    }

    /** Any codec; an RPTQ one (dynamic ranges) needs its plan on the device, uploaded from the codec's own plan. */
    public static GpuLinkCodec of(LinkCodec codec, LinkCodecKernels kernels, DeviceClusterPlan plan) {
        Objects.requireNonNull(codec, "codec");
        Objects.requireNonNull(kernels, "kernels");
        return switch (codec.id()) {
            case FP16, INT8 -> new GpuLinkCodec(codec, kernels, null, 0);
            case INT4_RPTQ, INT3_RPTQ -> {
                if (!(codec instanceof RptqLinkCodec rptq)) {
                    throw new IllegalArgumentException(codec.id() + " on the GPU needs an RptqLinkCodec, got "
                            + codec.getClass().getSimpleName());
                }
                if (rptq.ranges() != RptqLinkCodec.Ranges.DYNAMIC) {
                    throw new IllegalArgumentException("the RPTQ link kernels encode dynamic ranges only, codec has "
                            + rptq.ranges());
                }
                if (plan == null || plan.fingerprint() != rptq.plan().fingerprint()) {
                    throw new IllegalArgumentException(String.format("%s codec has cluster plan %08x, the device plan "
                            + "is %s", codec.id(), rptq.plan().fingerprint(),
                            plan == null ? "missing" : String.format("%08x", plan.fingerprint())));
                }
                yield new GpuLinkCodec(codec, kernels, plan, rptq.bits());
            }
        };
    }

    public LinkCodec codec() {
        return codec;
    }

    /** True when hidden rows of {@code inputType} are this codec's payload as they are (FP16 rows, FP16 codec). */
    public boolean encodesAsCopy(DType inputType) {
        return codec.id() == io.bitrelay.runtime.wire.CodecId.FP16 && inputType == DType.F16;
    }

    /** True when the payload is the decoded rows of {@code outputType} as it is (FP16 codec into FP16 rows). */
    public boolean decodesAsCopy(DType outputType) {
        return encodesAsCopy(outputType);
    }

    /** Queues the encode of (rows, width) hidden rows at {@code x} into params and payload at the given addresses. */
    void encode(DType inputType, long x, int rows, int width, long params, long payload, long status, CudaStream stream) {
        switch (codec.id()) {
            case FP16 -> {
                if (inputType != DType.F32) {
                    throw new IllegalArgumentException("fp16 link encode of " + inputType + " rows: FP16 rows are sent as"
                            + " they are, FP32 rows are rounded; nothing else");
                }
                kernels.fp16Encode(x, (long) rows * width, payload, stream);
            }
            case INT8 -> kernels.int8Encode(inputType, x, rows, width, params, payload, status, stream);
            case INT4_RPTQ, INT3_RPTQ -> {
                requirePlanWidth(width);
                kernels.rptqEncode(bits, inputType, x, rows, width, plan.permAddress(), plan.clusterEndsAddress(),
                        plan.clusters(), plan.fingerprint(), params, payload, status, stream);
            }
        }
    }

    /** Queues the decode of params and payload at the given addresses into (rows, width) rows of outputType. */
    void decode(long params, long payload, int rows, int width, DType outputType, long out, CudaStream stream) {
        switch (codec.id()) {
            case FP16 -> {
                if (outputType != DType.F32) {
                    throw new IllegalArgumentException("fp16 link decode into " + outputType + " rows: FP16 rows take the"
                            + " payload as it is, FP32 rows are widened; nothing else");
                }
                kernels.fp16Decode(payload, (long) rows * width, out, stream);
            }
            case INT8 -> kernels.int8Decode(outputType, params, payload, rows, width, out, stream);
            case INT4_RPTQ, INT3_RPTQ -> {
                requirePlanWidth(width);
                kernels.rptqDecode(bits, outputType, params, payload, rows, width, plan.inversePermAddress(),
                        plan.clusterEndsAddress(), plan.clusters(), out, stream);
            }
        }
    }

    private void requirePlanWidth(int width) {
        if (width != plan.width()) {
            throw new IllegalArgumentException(codec.id() + " cluster plan is for width " + plan.width() + ", got " + width);
        }
    }

    @Override
    public String toString() {
        return "GPU " + codec.id();
    }
}
