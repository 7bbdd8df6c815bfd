import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.wire.Int8TokenCodec;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.RptqLinkCodec;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/**
 * Golden link-codec frames for the CUDA codecs (kernels/src/main/cuda/link_codecs.cu): the Java codecs
 * encode fixed pseudo-random activations and the files record input, plan, params, payload and the
 * decoded FP32 values, which the GPU kernels must reproduce byte for byte. Not part of any Maven build:
 * run it by hand (kernels/src/test/golden/make_goldens.sh) after changing a codec.
 *
 * <pre>
 *  file, little-endian
 *  +-------------------------------------------------------------------------------------------+
 *  | magic 'BRGF' (u32) | version 1 (u32) | codec id (u32: 2 int8, 3 int4-rptq, 4 int3-rptq)     |
 *  | rows (u32) | width (u32) | clusters (u32, 0 for int8) | input kind (u32: 0 FP16, 1 FP32)      |
 *  | plan fingerprint (u32, 0 for int8)                                                         |
 *  | input: rows × width FP16 bits (u16) or FP32                                                 |
 *  | permutation: width × i32 (rptq only) | cluster ends: clusters × i32 (rptq only)             |
 *  | params bytes (u32) | params | payload bytes (u32) | payload | decoded: rows × width FP32     |
 *  +-------------------------------------------------------------------------------------------+
 * </pre>
 * An FP16 case's values are FP16 numbers widened to FP32 before the Java codec sees them, which is what
 * a GPU stage holding FP16 hidden states sends.
 */
public final class GoldenFrames {
    private static final int MAGIC = 'B' | 'R' << 8 | 'G' << 16 | 'F' << 24;

    public static void main(String[] args) throws IOException {
        Path out = Path.of(args.length > 0 ? args[0] : "kernels/src/test/resources/golden");
        Files.createDirectories(out);
        for (int width : new int[] {768, 12288}) {
            int rows = width == 768 ? 9 : 4;
            write(out, "int8_w" + width + "_f16", 2, null, activations(rows, width, true, 11 + width), true);
            ClusterPlan plan = plan(width, 8, 7 + width);
            write(out, "int4_w" + width + "_f16", 3, plan, activations(rows, width, true, 13 + width), true);
            write(out, "int3_w" + width + "_f16", 4, plan, activations(rows, width, true, 17 + width), true);
        }
        // FP32 inputs (the FP32-input kernels), with a width that is no multiple of 8 for the tails
        write(out, "int8_w768_f32", 2, null, activations(9, 768, false, 19), false);
        ClusterPlan plan = plan(768, 8, 23);
        write(out, "int4_w768_f32", 3, plan, activations(9, 768, false, 29), false);
        write(out, "int3_w768_f32", 4, plan, activations(9, 768, false, 31), false);
        ClusterPlan odd = plan(100, 5, 37);
        write(out, "int8_w100_f32", 2, null, activations(3, 100, false, 41), false);
        write(out, "int4_w100_f32", 3, odd, activations(3, 100, false, 43), false);
        write(out, "int3_w100_f32", 4, odd, activations(3, 100, false, 47), false);
    }

    /**
     * Rows of LLM-like activations: N(0, 1) times a per-channel spread, a few outlier channels ×40, rows of
     * different magnitudes; row 0 all zeros, row 1 ±0 and tiny values (FP16 subnormal scales), row 2 one
     * constant (a zero RPTQ scale), the rest random; FP32 cases also get a row beyond FP16's range.
     */
    private static float[] activations(int rows, int width, boolean f16, long seed) {
        Random random = new Random(seed);
        float[] channelScale = new float[width];
        for (int j = 0; j < width; j++) {
            channelScale[j] = (float) (0.2 + random.nextDouble()) * (random.nextInt(97) == 0 ? 40f : 1f);
        }
        float[] x = new float[rows * width];
        for (int r = 0; r < rows; r++) {
            double rowScale = Math.pow(10, random.nextDouble() * 3 - 1.5);
            for (int j = 0; j < width; j++) {
                float v = switch (r) {
                    case 0 -> 0f;
                    case 1 -> random.nextInt(3) == 0 ? (random.nextBoolean() ? -0f : 0f)
                            : (float) (random.nextGaussian() * 3e-6);
                    case 2 -> 1.3f;
                    default -> (float) (random.nextGaussian() * channelScale[j] * rowScale);
                };
                if (!f16 && r == 3) {
                    v *= 4e5f; // beyond 65504: saturating scales and minimums
                }
                x[r * width + j] = f16 ? Float.float16ToFloat(Float.floatToFloat16(v)) : v;
            }
        }
        return x;
    }

    /** A random permutation and uneven clusters (sizes no multiple of 8), calibrated on nothing in particular. */
    private static ClusterPlan plan(int width, int clusters, long seed) {
        Random random = new Random(seed);
        int[] permutation = new int[width];
        for (int j = 0; j < width; j++) {
            permutation[j] = j;
        }
        for (int j = width - 1; j > 0; j--) {
            int k = random.nextInt(j + 1);
            int t = permutation[j];
            permutation[j] = permutation[k];
            permutation[k] = t;
        }
        int[] ends = new int[clusters];
        float[] min = new float[clusters];
        float[] max = new float[clusters];
        int remaining = width;
        int at = 0;
        for (int c = 0; c < clusters; c++) {
            int left = clusters - c;
            int size = c == clusters - 1 ? remaining : Math.max(1, remaining / left + random.nextInt(remaining / left) - remaining / left / 2);
            at += size;
            remaining -= size;
            ends[c] = at;
            min[c] = -1f - c;
            max[c] = 1f + c;
        }
        return new ClusterPlan(permutation, ends, min, max);
    }

    private static void write(Path dir, String name, int codecId, ClusterPlan plan, float[] x, boolean f16)
            throws IOException {
        int width = plan != null ? plan.width() : (name.contains("w100") ? 100 : name.contains("w768") ? 768 : 12288);
        int rows = x.length / width;
        LinkCodec codec = switch (codecId) {
            case 2 -> new Int8TokenCodec();
            case 3 -> RptqLinkCodec.int4(plan);
            default -> RptqLinkCodec.int3(plan);
        };
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment in = arena.allocate((long) x.length * Float.BYTES, 64);
            MemorySegment.copy(x, 0, in, ValueLayout.JAVA_FLOAT, 0, x.length);
            MemorySegment params = arena.allocate(codec.paramsBytes(rows, width), 64);
            MemorySegment payload = arena.allocate(codec.payloadBytes(rows, width), 64);
            codec.encode(in, rows, width, params, payload);
            MemorySegment decoded = arena.allocate((long) x.length * Float.BYTES, 64);
            codec.decode(params, payload, rows, width, decoded);

            int clusters = plan != null ? plan.clusters() : 0;
            long size = 32L + (long) x.length * (f16 ? 2 : 4) + (plan != null ? 4L * (width + clusters) : 0)
                    + 8 + params.byteSize() + payload.byteSize() + 4L * x.length;
            ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(size)).order(ByteOrder.LITTLE_ENDIAN);
            b.putInt(MAGIC).putInt(1).putInt(codecId).putInt(rows).putInt(width).putInt(clusters)
                    .putInt(f16 ? 0 : 1).putInt(plan != null ? plan.fingerprint() : 0);
            for (float v : x) {
                if (f16) {
                    b.putShort(Float.floatToFloat16(v));
                } else {
                    b.putFloat(v);
                }
            }
            if (plan != null) {
                for (int p : plan.permutation()) {
                    b.putInt(p);
                }
                for (int c = 0; c < clusters; c++) {
                    b.putInt(plan.clusterEnd(c));
                }
            }
            b.putInt(Math.toIntExact(params.byteSize())).put(params.toArray(ValueLayout.JAVA_BYTE));
            b.putInt(Math.toIntExact(payload.byteSize())).put(payload.toArray(ValueLayout.JAVA_BYTE));
            for (float v : decoded.toArray(ValueLayout.JAVA_FLOAT)) {
                b.putFloat(v);
            }
            Files.write(dir.resolve(name + ".bin"), b.array());
            System.out.printf("%-16s rows %d width %5d params %6d payload %7d%n", name, rows, width,
                    params.byteSize(), payload.byteSize());
        }
    }
}
