package io.bitrelay.actors.gateway;

import io.bitrelay.actors.coordinator.FinishReason;

import io.bitrelay.actors.coordinator.GenerationJob;

import io.bitrelay.runtime.eval.PromptScoring;
import io.bitrelay.runtime.eval.TokenScore;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.model.opt.SequenceChunk;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Generates on a whole {@link OptModel} in this process with continuous batching: one scheduler thread
 * loops over steps; between steps it drops cancelled jobs and admits waiting ones in submission order up
 * to {@link LocalBackendSettings#maxBatchSize()}; each step is one forward over every active sequence
 * (a new one contributes its whole prompt, the others their last token) and samples one token per
 * sequence with that job's own {@link io.bitrelay.runtime.generate.Sampler}. A job leaves the batch on
 * EOS, max tokens or cancellation, and its KV cache is closed then. A job that scores its prompt (echo +
 * logprobs) runs alone between steps with {@link PromptScoring}, the same helper perplexity uses.
 *
 * <p>Listener calls all come from the scheduler thread, never while it holds the queue lock, so a
 * listener may call {@link #cancel} (or {@link #submit}). The EOS token itself is not passed to
 * {@code onToken}: the job finishes with EOS instead. If a forward step throws, every job in that step
 * fails ({@code onFailed}) since none of their caches can be trusted; waiting jobs are unaffected.
 *
 * <p>The caller owns the model and closes it after {@link #close()}.
 */
public final class LocalGenerationBackend implements GenerationBackend, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(LocalGenerationBackend.class);
    private static final long JOIN_MILLIS = 30_000;

    private final OptModel model;
    private final LocalBackendSettings settings;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition workArrived = lock.newCondition();
    private final ArrayDeque<Waiting> waiting = new ArrayDeque<>(); // guarded by lock
    private final Set<String> cancelRequests = new HashSet<>();     // guarded by lock
    private boolean closing;                                        // guarded by lock
    private final List<ActiveSequence> active = new ArrayList<>();  // scheduler thread only
    private final Thread scheduler;

    private record Waiting(GenerationJob job, TokenListener listener) {
    }

    private LocalGenerationBackend(OptModel model, LocalBackendSettings settings) {
        this.model = model;
        this.settings = settings;
        this.scheduler = Thread.ofPlatform().name("bitrelay-local-backend").daemon(true).unstarted(this::runScheduler);
    }

    /** Starts the scheduler thread; the model must hold every layer. */
    public static LocalGenerationBackend start(OptModel model, LocalBackendSettings settings) {
        if (!model.range().ownsEmbeddings() || !model.range().ownsHead()) {
            throw new IllegalArgumentException("a local backend needs the whole model, this one holds " + model.range());
        }
        LocalGenerationBackend backend = new LocalGenerationBackend(model, settings);
        backend.scheduler.start();
        return backend;
    }

    @Override
    public void submit(GenerationJob job, TokenListener listener) {
        validate(job);
        lock.lock();
        try {
            if (closing) {
                throw new RejectedExecutionException("the backend is shutting down");
            }
            if (waiting.size() >= settings.maxWaitingJobs()) {
                throw new RejectedExecutionException(waiting.size() + " requests are already waiting (limit "
                        + settings.maxWaitingJobs() + ", " + LocalBackendSettings.PATH + ".max-waiting-jobs); retry later");
            }
            waiting.addLast(new Waiting(job, listener));
            workArrived.signal();
        } finally {
            lock.unlock();
        }
    }

    private void validate(GenerationJob job) {
        OptConfig config = model.config();
        int[] prompt = job.promptTokens();
        if (prompt.length == 0) {
            throw new IllegalArgumentException("the prompt is empty");
        }
        if (job.maxNewTokens() < (job.scorePrompt() ? 0 : 1)) {
            throw new IllegalArgumentException("maxNewTokens must be >= 1, got " + job.maxNewTokens());
        }
        if ((long) prompt.length + job.maxNewTokens() > config.maxPositions()) {
            throw new IllegalArgumentException("prompt of " + prompt.length + " tokens + " + job.maxNewTokens()
                    + " new tokens exceeds the model's context of " + config.maxPositions());
        }
        for (int token : prompt) {
            if (token < 0 || token >= config.vocabSize()) {
                throw new IllegalArgumentException("token id " + token + " is outside the vocabulary of " + config.vocabSize());
            }
        }
    }

    @Override
    public void cancel(String requestId) {
        lock.lock();
        try {
            cancelRequests.add(requestId);
            workArrived.signal();
        } finally {
            lock.unlock();
        }
    }

    @Override
    public int queueDepth() {
        lock.lock();
        try {
            return waiting.size();
        } finally {
            lock.unlock();
        }
    }

    @Override
    public java.util.Map<String, String> describe() {
        return java.util.Map.of("backend", "local", "kv_cache", model.kvPrecision().optionName());
    }

    @Override
    public boolean ready() {
        lock.lock();
        try {
            return !closing && scheduler.isAlive();
        } finally {
            lock.unlock();
        }
    }

    private void runScheduler() {
        try {
            while (true) {
                List<Waiting> cancelledWhileWaiting = new ArrayList<>();
                List<Waiting> admitted = new ArrayList<>();
                Set<String> cancels;
                lock.lock();
                try {
                    while (!closing && waiting.isEmpty() && cancelRequests.isEmpty() && active.isEmpty()) {
                        workArrived.await();
                    }
                    if (closing) {
                        return;
                    }
                    cancels = new HashSet<>(cancelRequests);
                    cancelRequests.clear();
                    waiting.removeIf(w -> cancels.contains(w.job().requestId()) && cancelledWhileWaiting.add(w));
                    while (active.size() + admitted.size() < settings.maxBatchSize() && !waiting.isEmpty()) {
                        admitted.add(waiting.pollFirst());
                    }
                } finally {
                    lock.unlock();
                }
                for (Waiting w : cancelledWhileWaiting) {
                    notifyFinished(w.listener(), w.job(), FinishReason.CANCELLED);
                }
                for (Iterator<ActiveSequence> it = active.iterator(); it.hasNext(); ) {
                    ActiveSequence sequence = it.next();
                    if (cancels.contains(sequence.job.requestId())) {
                        it.remove();
                        sequence.close();
                        notifyFinished(sequence.listener, sequence.job, FinishReason.CANCELLED);
                    }
                }
                for (Waiting w : admitted) {
                    if (w.job().scorePrompt()) {
                        score(w);
                    } else {
                        active.add(new ActiveSequence(w.job(), w.listener(), model.newCache()));
                    }
                }
                if (!active.isEmpty()) {
                    step();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException | Error e) {
            LOG.error("local backend scheduler died", e);
        } finally {
            failEverything("the backend is shutting down");
        }
    }

    /** A scoring job runs alone, whole, between steps: one forward over its prompt, then its scores and MAX_TOKENS. */
    private void score(Waiting w) {
        List<TokenScore> scores;
        try {
            scores = List.of(PromptScoring.scoreWhole(model, w.job().promptTokens(), w.job().logprobs()));
        } catch (RuntimeException e) {
            LOG.error("scoring the prompt of {} failed", w.job().requestId(), e);
            notifyFailed(w.listener(), w.job(), "scoring failed: " + e.getMessage());
            return;
        }
        try {
            w.listener().onPromptScores(scores);
        } catch (RuntimeException e) {
            LOG.warn("listener of {} threw; dropping the job", w.job().requestId(), e);
            return;
        }
        notifyFinished(w.listener(), w.job(), FinishReason.MAX_TOKENS);
    }

    private void step() {
        List<SequenceChunk> chunks = new ArrayList<>(active.size());
        for (ActiveSequence sequence : active) {
            chunks.add(sequence.chunk());
        }
        float[][] logits;
        try {
            logits = model.forward(chunks, false);
        } catch (RuntimeException e) {
            LOG.error("forward step over {} sequences failed", active.size(), e);
            String reason = "generation step failed: " + e.getMessage();
            for (ActiveSequence sequence : active) {
                sequence.close();
                notifyFailed(sequence.listener, sequence.job, reason);
            }
            active.clear();
            return;
        }
        int eos = model.config().eosTokenId();
        List<ActiveSequence> stillActive = new ArrayList<>(active.size());
        for (int i = 0; i < active.size(); i++) {
            ActiveSequence sequence = active.get(i);
            FinishReason finished;
            try {
                finished = sequence.accept(logits[i], eos);
            } catch (RuntimeException e) {
                // A listener that throws has lost its client; the rest of the batch goes on.
                LOG.warn("listener of {} threw; dropping the job", sequence.job.requestId(), e);
                sequence.close();
                continue;
            }
            if (finished == null) {
                stillActive.add(sequence);
            } else {
                sequence.close();
                notifyFinished(sequence.listener, sequence.job, finished);
            }
        }
        active.clear();
        active.addAll(stillActive);
    }

    private void failEverything(String reason) {
        List<Waiting> left;
        lock.lock();
        try {
            closing = true;
            left = new ArrayList<>(waiting);
            waiting.clear();
            cancelRequests.clear();
        } finally {
            lock.unlock();
        }
        for (ActiveSequence sequence : active) {
            sequence.close();
            notifyFailed(sequence.listener, sequence.job, reason);
        }
        active.clear();
        for (Waiting w : left) {
            notifyFailed(w.listener(), w.job(), reason);
        }
    }

    private static void notifyFinished(TokenListener listener, GenerationJob job, FinishReason reason) {
        try {
            listener.onFinished(reason);
        } catch (RuntimeException e) {
            LOG.warn("listener of {} threw in onFinished", job.requestId(), e);
        }
    }

    private static void notifyFailed(TokenListener listener, GenerationJob job, String reason) {
        try {
            listener.onFailed(reason);
        } catch (RuntimeException e) {
            LOG.warn("listener of {} threw in onFailed", job.requestId(), e);
        }
    }

    /** Stops the scheduler after its current step; jobs still running or waiting get onFailed. */
    @Override
    public void close() {
        lock.lock();
        try {
            closing = true;
            workArrived.signal();
        } finally {
            lock.unlock();
        }
        try {
            scheduler.join(JOIN_MILLIS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (scheduler.isAlive()) {
            LOG.warn("local backend scheduler did not stop within {} ms", JOIN_MILLIS);
        }
    }
}
