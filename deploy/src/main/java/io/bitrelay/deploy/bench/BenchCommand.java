package io.bitrelay.deploy.bench;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Benchmarks, each a subcommand; every one measures its peer in the same run. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmarks (each reports ratios against a peer measured in the same run).",
        subcommands = {GemmBench.class, GpuGemmBench.class, GpuLayersBench.class, GpuLinkBench.class, ModelBench.class,
                ClusterBench.class, CodecBench.class, FrameAuthBench.class, ServeBench.class, ChaosBench.class,
                OverloadBench.class})
public final class BenchCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }
}
