package io.bitrelay.runtime.cuda;

import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUstreamCaptureMode;
import jcuda.driver.JCudaDriver;

/**
 * An executable CUDA graph captured from a stream: what {@code work} queued on the stream (kernels, cuBLASLt
 * GEMMs, copies) recorded once, with every launch argument frozen, and replayed by {@link #launch} as one
 * submission. Whatever must vary between replays has to live in device memory the graph reads, written before
 * each launch. Capture runs nothing; work that needs the host mid-way (a synchronize, an allocation, an event
 * query) fails the capture and {@link #capture} throws with the reason, the stream back to normal.
 */
public final class CudaGraph implements AutoCloseable {
    private CUgraph graph;
    private CUgraphExec executable;

    private CudaGraph(CUgraph graph, CUgraphExec executable) {
        this.graph = graph;
        this.executable = executable;
    }

    /** Captures what {@code work} queues on {@code stream} (from the calling thread) and instantiates it. */
    public static CudaGraph capture(CudaStream stream, Runnable work) {
        // thread-local mode: other threads' unrelated CUDA calls (another stage, a link codec) stay legal meanwhile
        JCudaDriver.cuStreamBeginCapture(stream.handle(), CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
        CUgraph graph = new CUgraph();
        try {
            work.run();
        } catch (RuntimeException e) {
            try {
                JCudaDriver.cuStreamEndCapture(stream.handle(), graph);
                JCudaDriver.cuGraphDestroy(graph);
            } catch (RuntimeException ended) {
                e.addSuppressed(ended); // the capture was invalidated: ending it reports that, and leaves the stream usable
            }
            throw e;
        }
        JCudaDriver.cuStreamEndCapture(stream.handle(), graph);
        CUgraphExec executable = new CUgraphExec();
        try {
            JCudaDriver.cuGraphInstantiate(executable, graph, 0L);
        } catch (RuntimeException e) {
            JCudaDriver.cuGraphDestroy(graph);
            throw e;
        }
        return new CudaGraph(graph, executable);
    }

    /** Queues one replay on {@code stream}. */
    public void launch(CudaStream stream) {
        if (executable == null) {
            throw new IllegalStateException("CUDA graph is closed");
        }
        JCudaDriver.cuGraphLaunch(executable, stream.handle());
    }

    /** Frees the graph; replays already queued finish first (the caller synchronizes their stream before). */
    @Override
    public void close() {
        if (executable != null) {
            JCudaDriver.cuGraphExecDestroy(executable);
            JCudaDriver.cuGraphDestroy(graph);
            executable = null;
            graph = null;
        }
    }
}
