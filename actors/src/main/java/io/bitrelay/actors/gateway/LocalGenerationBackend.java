package io.bitrelay.actors.gateway;

import io.bitrelay.actors.coordinator.GenerationJob;
import io.bitrelay.actors.coordinator.Scheduler;
import io.bitrelay.actors.pipeline.MicroBatch;
import io.bitrelay.actors.worker.ResidentBatches;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptModel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Generates on a whole {@link OptModel} in this process, as a one-stage pipeline: the cluster's {@link Scheduler}
 * (one micro-batch slot, {@link LocalBackendSettings#schedulerSettings()}) admits jobs in submission order and
 * decides when each finishes; the first stage's {@link ResidentBatches} forms each step, feeding every sequence the
 * token it sampled last until its {@link io.bitrelay.actors.pipeline.StopRule} ends it; {@link WholeModelStage}
 * computes the step. So EOS, min_tokens, max tokens and cancellation end a job here exactly as in a cluster.
 *
 * <p>One scheduler thread loops: it applies cancels, admits and places waiting jobs and feeds back the last
 * step's tokens (so a prompt that arrived during a step joins the next one, as a chunk of a scored prompt does),
 * runs one forward over the step, and hands the tokens to the scheduler. Listener calls all come from that
 * thread, never while it holds the lock, so a listener may call {@link #cancel} (or {@link #submit}). The EOS
 * token itself is not passed to {@code onToken}: the job finishes with EOS instead. If a forward step throws,
 * every job in that step fails ({@code onFailed}) since none of their caches can be trusted; waiting jobs are
 * unaffected.
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
    private final Scheduler<Client> scheduler;                            // guarded by lock
    private final Set<String> cancelRequests = new LinkedHashSet<>();     // guarded by lock
    private boolean newWork;                                              // guarded by lock: a submit or cancel not yet applied
    private boolean closing;                                              // guarded by lock
    private final ResidentBatches firstStage;                             // scheduler thread only
    private final WholeModelStage stage;                                  // scheduler thread only
    private final Thread thread;

    /** Where a job's events go; lost once its listener threw: the job is cancelled and told nothing more. */
    private static final class Client {
        final TokenListener listener;
        boolean lost; // scheduler thread only

        Client(TokenListener listener) {
            this.listener = listener;
        }
    }

    /** A computed step whose tokens the first stage has not been fed yet. */
    private record Computed(long batchId, int[] sequenceIds, int[] tokens) {
    }

    private LocalGenerationBackend(OptModel model, LocalBackendSettings settings) {
        this.model = model;
        this.settings = settings;
        this.scheduler = new Scheduler<>(settings.schedulerSettings(), model.config().eosTokenId());
        this.stage = new WholeModelStage(model);
        this.firstStage = new ResidentBatches(settings.maxBatchTokens());
        this.thread = Thread.ofPlatform().name("bitrelay-local-backend").daemon(true).unstarted(this::runScheduler);
    }

    /** Starts the scheduler thread; the model must hold every layer. */
    public static LocalGenerationBackend start(OptModel model, LocalBackendSettings settings) {
        if (!model.range().ownsEmbeddings() || !model.range().ownsHead()) {
            throw new IllegalArgumentException("a local backend needs the whole model, this one holds " + model.range());
        }
        LocalGenerationBackend backend = new LocalGenerationBackend(model, settings);
        backend.thread.start();
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
            int waiting = scheduler.waitingCount();
            if (waiting >= settings.maxWaitingJobs()) {
                throw new RejectedExecutionException(waiting + " requests are already waiting (limit "
                        + settings.maxWaitingJobs() + ", " + LocalBackendSettings.PATH + ".max-waiting-jobs); retry later");
            }
            scheduler.submit(job, new Client(listener));
            newWork = true;
            workArrived.signal();
        } finally {
            lock.unlock();
        }
        // Outside the lock, as every listener call (a listener may call cancel); a first token may come before it.
        listener.onQueued();
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
            newWork = true;
            workArrived.signal();
        } finally {
            lock.unlock();
        }
    }

    @Override
    public int queueDepth() {
        lock.lock();
        try {
            return scheduler.waitingCount();
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
            return !closing && thread.isAlive();
        } finally {
            lock.unlock();
        }
    }

    private void runScheduler() {
        try {
            Computed computed = null;
            while (true) {
                List<Scheduler.Event<Client>> events = new ArrayList<>();
                MicroBatch step;
                lock.lock();
                try {
                    while (!closing && computed == null && !newWork) {
                        workArrived.await();
                    }
                    if (closing) {
                        return;
                    }
                    step = nextStep(computed, events);
                } finally {
                    lock.unlock();
                }
                relay(events);
                computed = step == null ? null : compute(step);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException | Error e) {
            LOG.error("local backend scheduler died", e);
        } finally {
            failEverything("the backend is shutting down");
        }
    }

    /**
     * Under the lock: applies cancels, places admitted jobs (they join the resident batch) and then feeds the first
     * stage the last step's tokens, which forms the next step with the joins in it and the leavers out.
     */
    private MicroBatch nextStep(Computed computed, List<Scheduler.Event<Client>> events) {
        newWork = false;
        List<ResidentBatches.Next> outcomes = new ArrayList<>();
        for (String requestId : cancelRequests) {
            Scheduler.Cancellation cancellation = scheduler.cancel(requestId, events::add);
            if (cancellation.closeNow() >= 0) {
                stage.free(List.of(cancellation.closeNow()));
            } else if (cancellation.leaveBatch() != 0) {
                outcomes.add(firstStage.leave(cancellation.leaveBatch(), new int[]{cancellation.leaveSequence()}));
            }
        }
        cancelRequests.clear();
        for (MicroBatch joining : scheduler.dispatch()) {
            outcomes.add(firstStage.join(joining));
        }
        if (computed != null) {
            outcomes.add(firstStage.sampled(computed.batchId(), computed.sequenceIds(), computed.tokens()));
        }
        MicroBatch step = null;
        for (ResidentBatches.Next next : outcomes) {
            if (next.left().length > 0) {
                stage.free(scheduler.left(next.batchId(), next.left(), events::add));
            }
            if (next.step() != null) {
                if (step != null) {
                    throw new IllegalStateException("steps of micro-batches " + step.batchId() + " and "
                            + next.batchId() + " at once, with one micro-batch slot");
                }
                step = next.step();
            }
        }
        return step;
    }

    /** Runs {@code step} and hands its tokens and scores to the scheduler; null when the step failed (its jobs did too). */
    private Computed compute(MicroBatch step) {
        List<Scheduler.Event<Client>> events = new ArrayList<>();
        WholeModelStage.Outcome outcome = null;
        String failure = null;
        try {
            outcome = stage.run(step);
        } catch (RuntimeException e) {
            LOG.error("forward step over {} sequences failed", step.entries().length, e);
            failure = "generation step failed: " + e.getMessage();
            firstStage.drop(step.batchId());
        }
        lock.lock();
        try {
            if (outcome == null) {
                stage.free(scheduler.fail(step.batchId(), failure, events::add));
            } else {
                stage.free(scheduler.complete(step.batchId(), outcome.sequenceIds(), outcome.tokens(), outcome.scores(),
                        events::add));
            }
        } finally {
            lock.unlock();
        }
        relay(events);
        return outcome == null ? null : new Computed(step.batchId(), outcome.sequenceIds(), outcome.tokens());
    }

    /** Tells the listeners; a listener that throws has lost its client, so its job is dropped and the rest go on. */
    private void relay(List<Scheduler.Event<Client>> events) {
        for (Scheduler.Event<Client> event : events) {
            Client client = event.client();
            if (client.lost) {
                continue;
            }
            TokenListener listener = client.listener;
            try {
                switch (event) {
                    case Scheduler.Token<Client> token -> {
                        if (token.score() != null) {
                            listener.onTokenScore(token.score());
                        }
                        listener.onToken(token.token());
                    }
                    case Scheduler.PromptScores<Client> scores -> listener.onPromptScores(List.of(scores.scores()));
                    case Scheduler.Finished<Client> finished -> listener.onFinished(finished.reason());
                    case Scheduler.Failed<Client> failed -> listener.onFailed(failed.reason());
                }
            } catch (RuntimeException e) {
                LOG.warn("listener of {} threw; dropping the job", event.requestId(), e);
                client.lost = true;
                cancel(event.requestId());
            }
        }
    }

    private void failEverything(String reason) {
        List<Scheduler.Event<Client>> events = new ArrayList<>();
        lock.lock();
        try {
            closing = true;
            cancelRequests.clear();
            scheduler.failAll(reason, events::add);
        } finally {
            lock.unlock();
        }
        stage.close();
        relay(events);
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
            thread.join(JOIN_MILLIS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (thread.isAlive()) {
            LOG.warn("local backend scheduler did not stop within {} ms", JOIN_MILLIS);
        }
    }
}
