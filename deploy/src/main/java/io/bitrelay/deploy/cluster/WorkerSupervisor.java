package io.bitrelay.deploy.cluster;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Keeps a local cluster's worker JVMs running. A worker that exits while the cluster runs (a crash, kill -9, or a
 * node the cluster removed after a pause: exit code 75) is started again under the same id after a backoff, within
 * the {@link WorkerRestartPolicy}. The new JVM is a new cluster node: the coordinator takes it as a standby, or
 * places it when the pipeline lacks workers (docs/failover.md, "Worker restarts").
 */
final class WorkerSupervisor implements AutoCloseable {
    /** Starts worker {@code index}'s JVM (0-based; its id is worker-(index + 1)); {@code restart}: not its first. */
    interface Launcher {
        Process launch(int index, boolean restart) throws IOException;
    }

    /** One worker id and its current JVM, with the exit codes of the JVMs before it. */
    private static final class Slot {
        final int index;
        volatile Process process;
        final List<Integer> exitCodes = new CopyOnWriteArrayList<>();
        /** When each restart within the policy's window happened (System.nanoTime). */
        final Deque<Long> restarts = new ArrayDeque<>();
        /** The policy's limit was reached: this worker stays down. */
        volatile boolean givenUp;

        Slot(int index) {
            this.index = index;
        }

        String id() {
            return "worker-" + (index + 1);
        }
    }

    private final Launcher launcher;
    private final WorkerRestartPolicy policy;
    private final Consumer<String> events;
    private final List<Slot> slots = new CopyOnWriteArrayList<>();
    private final ScheduledExecutorService restarter = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().daemon().name("bitrelay-worker-restarts").factory());
    private volatile boolean closing;

    WorkerSupervisor(Launcher launcher, WorkerRestartPolicy policy, Consumer<String> events) {
        this.launcher = launcher;
        this.policy = policy;
        this.events = events;
    }

    /** Starts the next worker JVM and watches it; returns its id. */
    synchronized String add() throws IOException {
        Slot slot = new Slot(slots.size());
        slot.process = launcher.launch(slot.index, false);
        slots.add(slot);
        watch(slot, slot.process);
        return slot.id();
    }

    int size() {
        return slots.size();
    }

    /** Worker {@code workerId}'s current JVM (the latest, after restarts). */
    Process process(String workerId) {
        return slot(workerId).process;
    }

    /** The exit codes of worker {@code workerId}'s JVMs that have exited, oldest first. */
    List<Integer> exitCodes(String workerId) {
        return List.copyOf(slot(workerId).exitCodes);
    }

    /** Whether worker {@code workerId} exited and will not be started again (the restart policy's limit). */
    boolean givenUp(String workerId) {
        return slot(workerId).givenUp;
    }

    private Slot slot(String workerId) {
        int index = Integer.parseInt(workerId.substring("worker-".length())) - 1;
        if (index < 0 || index >= slots.size()) {
            throw new IllegalArgumentException("no " + workerId + " (" + slots.size() + " workers)");
        }
        return slots.get(index);
    }

    private void watch(Slot slot, Process process) {
        process.onExit().thenAccept(exited -> onExit(slot, exited));
    }

    private void onExit(Slot slot, Process exited) {
        if (closing) {
            return;
        }
        long now = System.nanoTime();
        synchronized (slot) {
            slot.exitCodes.add(exited.exitValue());
            while (!slot.restarts.isEmpty() && now - slot.restarts.peekFirst() > policy.within().toNanos()) {
                slot.restarts.pollFirst();
            }
            if (slot.restarts.size() >= policy.maxRestarts()) {
                slot.givenUp = true;
                events.accept(slot.id() + " (pid " + exited.pid() + ") exited with code " + exited.exitValue()
                        + "; not restarted: " + slot.restarts.size() + " restart(s) within " + policy.within()
                        + " (" + WorkerRestartPolicy.PREFIX + "max-restarts = " + policy.maxRestarts() + ")");
                return;
            }
            Duration backoff = policy.backoff(slot.restarts.size());
            slot.restarts.addLast(now + backoff.toNanos());
            events.accept(slot.id() + " (pid " + exited.pid() + ") exited with code " + exited.exitValue()
                    + "; starting it again in " + backoff.toMillis() + " ms");
            restarter.schedule(() -> restart(slot), backoff.toMillis(), TimeUnit.MILLISECONDS);
        }
    }

    private synchronized void restart(Slot slot) {
        if (closing) {
            return;
        }
        try {
            Process process = launcher.launch(slot.index, true);
            slot.process = process;
            events.accept("restarted " + slot.id() + " (pid " + process.pid() + ")");
            watch(slot, process);
        } catch (IOException | RuntimeException e) {
            events.accept("could not restart " + slot.id() + ": " + e.getMessage());
        }
    }

    /** Stops restarting, then stops every worker JVM: SIGTERM, SIGKILL after 15 s. */
    @Override
    public void close() {
        synchronized (this) {
            closing = true; // a restart under way finishes first, and is stopped below with the others
        }
        restarter.shutdownNow();
        for (Slot slot : slots) {
            slot.process.destroy();
        }
        for (Slot slot : slots) {
            try {
                if (!slot.process.waitFor(15, TimeUnit.SECONDS)) {
                    slot.process.destroyForcibly();
                }
            } catch (InterruptedException e) {
                slot.process.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }
}
