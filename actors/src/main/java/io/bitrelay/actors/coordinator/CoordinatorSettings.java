package io.bitrelay.actors.coordinator;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;

import io.bitrelay.runtime.wire.LinkProtection;

import java.time.Duration;

/**
 * The coordinator's settings, from {@code bitrelay.coordinator} (defaults in configs/bitrelay.conf).
 *
 * @param checkpointDir     checkpoint every worker loads (same path on every host)
 * @param linkCodec         codec of every inter-stage link
 * @param expectedWorkers   workers to wait for before placing layers
 * @param bytesPerParameter weight bytes per parameter on the workers (4: FP32 on the CPU)
 * @param reserveFraction   share of each worker's memory kept for KV cache and scratch
 * @param streamBase        Aeron stream id of the link out of stage 0; stage i uses streamBase + i (+ 1000 per pipeline placed before)
 * @param microBatchesPerStage micro-batches = 0 in the config: one micro-batch in flight per device the stages run
 *                          on ({@link PipelineDevices})
 * @param autoBatchSequences max-batch-sequences = 0 in the config: micro-batches sized from the sequences the stages'
 *                          KV memory holds ({@link SchedulerSettings#sizedFor})
 * @param linkClusters      RPTQ channel clusters per link (int4/int3 links)
 * @param linkStaticRanges  RPTQ links quantize each cluster with its calibrated range (fewer bytes) instead of
 *                          each token's own range within the cluster (more accurate)
 * @param quantization      the recipe the stages serve ({@code bitrelay.quantization})
 * @param failover          what happens when a worker is lost: how long requests wait, how few workers a pipeline
 *                          is rebuilt over
 * @param admission         the bound on the coordinator's queue and every request's deadline
 * @param linkProtection    what every placed pipeline's link frames carry: with AUTHENTICATED or ENCRYPTED a fresh
 *                          link key and a seal under it ({@code bitrelay.security.authenticate-links} and
 *                          {@code encrypt-links}, docs/security.md)
 */
public record CoordinatorSettings(String checkpointDir, String linkCodec, int expectedWorkers,
                                  double bytesPerParameter, double reserveFraction, int streamBase,
                                  Duration stepTimeout, SchedulerSettings scheduler, boolean microBatchesPerStage,
                                  boolean autoBatchSequences,
                                  int linkCalibrationSequences, int linkCalibrationTokens, long linkCalibrationSeed,
                                  int linkClusters, boolean linkStaticRanges, QuantizationSettings quantization,
                                  FailoverSettings failover, AdmissionSettings admission, LinkProtection linkProtection) {

    public static CoordinatorSettings from(Config root) {
        Config c = root.getConfig("bitrelay.coordinator");
        try {
            io.bitrelay.runtime.wire.CodecId.fromName(c.getString("link-codec"));
            return new CoordinatorSettings(
                    c.getString("checkpoint-dir"),
                    c.getString("link-codec"),
                    positive(c, "expected-workers"),
                    c.getDouble("bytes-per-parameter"),
                    c.getDouble("reserve-fraction"),
                    positive(c, "stream-base"),
                    c.getDuration("step-timeout"),
                    new SchedulerSettings(
                            Math.max(1, c.getInt("micro-batches")),
                            batchSequences(c),
                            positive(c, "max-batch-tokens"),
                            positive(c, "max-active-sequences")),
                    c.getInt("micro-batches") == 0,
                    c.getInt("max-batch-sequences") == 0,
                    positive(c, "link-calibration.sequences"),
                    positive(c, "link-calibration.tokens"),
                    c.getLong("link-calibration.seed"),
                    positive(c, "link-calibration.clusters"),
                    ranges(c.getString("link-calibration.ranges")),
                    QuantizationSettings.from(root),
                    FailoverSettings.from(c, positive(c, "expected-workers")),
                    AdmissionSettings.from(c),
                    LinkProtection.of(root.getBoolean("bitrelay.security.authenticate-links"),
                            root.getBoolean("bitrelay.security.encrypt-links")));
        } catch (ConfigException e) {
            throw new IllegalArgumentException("bad coordinator config: " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            if (e.getMessage() != null && e.getMessage().startsWith("bitrelay.")) {
                throw e;
            }
            throw new IllegalArgumentException("bitrelay.coordinator.link-codec: " + e.getMessage(), e);
        }
    }

    private static boolean ranges(String mode) {
        return switch (mode) {
            case "static" -> true;
            case "dynamic" -> false;
            default -> throw new IllegalArgumentException("bitrelay.coordinator.link-calibration.ranges must be dynamic or static, got '" + mode + "'");
        };
    }

    /** 0 (size from KV memory) stands for max-active-sequences until the stages report their memory. */
    private static int batchSequences(Config c) {
        int value = c.getInt("max-batch-sequences");
        if (value < 0) {
            throw new IllegalArgumentException("bitrelay.coordinator.max-batch-sequences must be ≥ 0 (0 = sized from the "
                    + "stages' KV memory), got " + value);
        }
        return value == 0 ? positive(c, "max-active-sequences") : value;
    }

    private static int positive(Config c, String key) {
        int value = c.getInt(key);
        if (value < 1) {
            throw new IllegalArgumentException("bitrelay.coordinator." + key + " must be ≥ 1, got " + value);
        }
        return value;
    }
}
