package io.bitrelay.deploy.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.bitrelay.deploy.ClientApiKey;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.net.InetAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Issue 16's proof against a running gateway (start one first: {@code bitrelay cluster}), its memory read from
 * outside through /proc: malformed requests, a burst of concurrent requests beyond the admission bounds, clients
 * that hang up, huge prompts, and the context boundary. Prints the machine it ran on and one table of figures.
 */
@Command(name = "overload", mixinStandardHelpOptions = true,
        description = "Malformed requests, a burst beyond the admission bounds, hung-up clients, 8 MB prompts and the context "
                + "boundary against a running gateway; its RSS read from /proc/PID.")
public final class OverloadBench implements Runnable {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Option(names = "--endpoint", defaultValue = "http://127.0.0.1:8080", description = "The gateway (default: ${DEFAULT-VALUE}).")
    URI endpoint;

    @Option(names = "--gateway-pid", required = true, description = "PID of the gateway's JVM (e.g. `bitrelay cluster`'s), for its RSS.")
    long gatewayPid;

    @Option(names = "--malformed", defaultValue = "1000", description = "Malformed requests sent; 0 skips this and so"
            + " does 0 for any count below (default: ${DEFAULT-VALUE}).")
    int malformed;

    @Option(names = "--burst", defaultValue = "1000", description = "Concurrent completions in the burst (default: ${DEFAULT-VALUE}).")
    int burst;

    @Option(names = "--burst-tokens", defaultValue = "16", description = "max_tokens of each burst request (default: ${DEFAULT-VALUE}).")
    int burstTokens;

    @Option(names = "--hang-ups", defaultValue = "1000", description = "Clients that send a long completion, half streamed, then hang up (default: ${DEFAULT-VALUE}).")
    int hangUps;

    @Option(names = "--hold-millis", defaultValue = "3000", description = "How long the hang-up clients stay before closing (default: ${DEFAULT-VALUE}).")
    long holdMillis;

    @Option(names = "--prompt-bytes", defaultValue = "8000000", description = "Size of the huge prompt (default: ${DEFAULT-VALUE}).")
    int promptBytes;

    @Option(names = "--huge-prompts", defaultValue = "6", description = "Huge prompts sent at once after the single one (default: ${DEFAULT-VALUE}).")
    int hugePrompts;

    @Option(names = "--context", defaultValue = "2048", description = "The served model's context, for the boundary (default: ${DEFAULT-VALUE}).")
    int context;

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofMinutes(2)).build(); // a burst overflows the listen backlog: SYNs are retried
    private final List<String[]> rows = new ArrayList<>();
    private ProcessMemory gateway;

    @Override
    public void run() {
        gateway = new ProcessMemory(gatewayPid);
        long started = gateway.startTicks();
        System.out.println(machine());
        System.out.printf("gateway: %s, pid %d, RSS %d MB at the start%n%n", endpoint, gatewayPid, gateway.rssBytes() >> 20);
        try {
            if (malformed > 0) {
                malformedRequests();
            }
            if (burst > 0) {
                burst();
            }
            if (hangUps > 0) {
                hangUps();
            }
            if (promptBytes > 0) {
                hugePrompts();
            }
            if (context > 0) {
                boundary();
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
        boolean same = gateway.alive() && gateway.startTicks() == started;
        row("gateway restarts during the run", same ? "0" : "the process is gone or another one has its pid", "");
        System.out.println("| what | figure | detail |");
        System.out.println("|---|---|---|");
        rows.forEach(r -> System.out.printf("| %s | %s | %s |%n", r[0], r[1], r[2]));
    }

    private void malformedRequests() throws IOException, InterruptedException {
        List<MalformedRequests.Kind> kinds = MalformedRequests.all();
        Map<String, Integer> statuses = new TreeMap<>();
        int jsonErrors = 0;
        List<String> bad = new ArrayList<>();
        long startNanos = System.nanoTime();
        for (int i = 0; i < malformed; i++) {
            MalformedRequests.Kind kind = kinds.get(i % kinds.size());
            HttpRequest.Builder request = ClientApiKey.authorize(HttpRequest.newBuilder(endpoint.resolve(kind.path())))
                    .timeout(Duration.ofSeconds(30)).method(kind.method(), kind.body().length == 0 && kind.method().equals("GET")
                            ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(kind.body()));
            if (kind.contentType() != null) {
                request.header("Content-Type", kind.contentType());
            }
            HttpResponse<String> response = http.send(request.build(), HttpResponse.BodyHandlers.ofString());
            statuses.merge(Integer.toString(response.statusCode()), 1, Integer::sum);
            if (response.statusCode() >= 400 && response.statusCode() < 500 && hasErrorMessage(response.body())) {
                jsonErrors++;
            } else if (bad.size() < 3) {
                bad.add(kind.name() + " → " + response.statusCode());
            }
        }
        double seconds = (System.nanoTime() - startNanos) / 1e9;
        row(malformed + " malformed requests (" + kinds.size() + " kinds, in turn)",
                String.format("%.1f %% 4xx with OpenAI's error JSON", 100.0 * jsonErrors / malformed),
                "statuses " + statuses + (bad.isEmpty() ? "" : ", not: " + bad) + String.format(", %.1f s", seconds));
    }

    private static boolean hasErrorMessage(String body) {
        try {
            JsonNode error = JSON.readTree(body).get("error");
            return error != null && !error.path("message").asText().isBlank() && error.hasNonNull("type");
        } catch (IOException e) {
            return false;
        }
    }

    /** Each request on a connection of its own, as {@code burst} separate clients would (a pool would reuse them). */
    private void burst() throws InterruptedException {
        long before = gateway.rssBytes();
        RssSampler sampler = RssSampler.start(gateway);
        byte[] body = ("{\"prompt\": \"a burst of requests\", \"max_tokens\": " + burstTokens + ", \"ignore_eos\": true}")
                .getBytes(StandardCharsets.UTF_8);
        List<CompletableFuture<RawResponse>> calls = new ArrayList<>();
        long startNanos = System.nanoTime();
        try (var threads = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < burst; i++) {
                calls.add(CompletableFuture.supplyAsync(() -> post(body), threads));
            }
            Map<String, Integer> statuses = new TreeMap<>();
            int retryAfter = 0;
            int refusals = 0;
            for (CompletableFuture<RawResponse> call : calls) {
                String status;
                try {
                    RawResponse response = call.join();
                    status = Integer.toString(response.status());
                    if (response.status() == 429) {
                        refusals++;
                        if (response.retryAfter() && hasErrorMessage(response.body())) {
                            retryAfter++;
                        }
                    }
                } catch (RuntimeException e) {
                    status = "client error: " + rootMessage(e);
                }
                statuses.merge(status, 1, Integer::sum);
            }
            double seconds = (System.nanoTime() - startNanos) / 1e9;
            long peak = sampler.stop();
            row(burst + " concurrent completions of " + burstTokens + " tokens, a connection each", "statuses " + statuses,
                    refusals + " refusals, " + retryAfter + " of them 429 with Retry-After and error JSON" + String.format(", %.1f s", seconds));
            row("gateway RSS in the burst", String.format("%d → peak %d MB (+%d)", before >> 20, peak >> 20, (peak - before) >> 20),
                    "sampled every 20 ms from /proc/" + gatewayPid + "/status");
        }
    }

    private record RawResponse(int status, boolean retryAfter, String body) {
    }

    /** One POST /v1/completions on a new connection; reads a non-streamed answer (Content-Length) and closes. */
    private RawResponse post(byte[] body) {
        try (Socket socket = new Socket(InetAddress.getByName(endpoint.getHost()), endpoint.getPort())) {
            socket.setSoTimeout(300_000);
            socket.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                    + authorization() + "Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            socket.getOutputStream().write(body);
            socket.getOutputStream().flush();
            java.io.DataInputStream in = new java.io.DataInputStream(new java.io.BufferedInputStream(socket.getInputStream()));
            String statusLine = line(in);
            int status = Integer.parseInt(statusLine.split(" ")[1]);
            boolean retryAfter = false;
            int length = 0;
            for (String header = line(in); !header.isEmpty(); header = line(in)) {
                String name = header.substring(0, Math.max(0, header.indexOf(':'))).toLowerCase(java.util.Locale.ROOT);
                if (name.equals("retry-after")) {
                    retryAfter = true;
                } else if (name.equals("content-length")) {
                    length = Integer.parseInt(header.substring(header.indexOf(':') + 1).strip());
                }
            }
            byte[] content = new byte[length];
            in.readFully(content);
            return new RawResponse(status, retryAfter, new String(content, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static String line(java.io.DataInputStream in) throws IOException {
        StringBuilder line = new StringBuilder();
        for (int b = in.read(); b != '\n'; b = in.read()) {
            if (b < 0) {
                throw new java.io.EOFException("the connection closed mid-answer after '" + line + "'");
            }
            if (b != '\r') {
                line.append((char) b);
            }
        }
        return line.toString();
    }

    private void hangUps() throws IOException, InterruptedException {
        String longAnswer = "{\"prompt\": \"nobody will read this\", \"max_tokens\": 200, \"ignore_eos\": true";
        List<Socket> clients = new ArrayList<>();
        try {
            for (int i = 0; i < hangUps; i++) {
                byte[] body = (longAnswer + (i % 2 == 0 ? ", \"stream\": true}" : "}")).getBytes(StandardCharsets.UTF_8);
                Socket socket = new Socket(InetAddress.getByName(endpoint.getHost()), endpoint.getPort());
                socket.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                        + authorization() + "Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                socket.getOutputStream().write(body);
                socket.getOutputStream().flush();
                clients.add(socket);
            }
            Thread.sleep(holdMillis);
        } finally {
            for (Socket socket : clients) {
                socket.close();
            }
        }
        Map<String, Double> during = metrics();
        long closed = System.nanoTime();
        Map<String, Double> now = during;
        while (System.nanoTime() - closed < 30_000_000_000L && !(now.get("bitrelay_gateway_requests_in_flight") == 0
                && now.getOrDefault("bitrelay_gateway_backend_running_sequences", 0.0) == 0
                && now.get("bitrelay_gateway_queue_depth") == 0)) {
            Thread.sleep(50);
            now = metrics();
        }
        double millis = (System.nanoTime() - closed) / 1e6;
        row(hangUps + " clients (half streamed) that hang up after " + holdMillis + " ms",
                String.format("%.0f running, %.0f queued, %.0f in flight for them %.0f ms later", now.getOrDefault(
                        "bitrelay_gateway_backend_running_sequences", -1.0), now.get("bitrelay_gateway_queue_depth"),
                        now.get("bitrelay_gateway_requests_in_flight"), millis),
                String.format("cancelled so far %.0f, rejected %.0f (gateway counters)",
                        now.get("bitrelay_gateway_requests_total{outcome=\"cancelled\"}"),
                        now.get("bitrelay_gateway_requests_total{outcome=\"rejected\"}")));
    }

    private void hugePrompts() throws IOException, InterruptedException {
        String prompt = "x".repeat(promptBytes);
        String body = "{\"prompt\": \"" + prompt + "\", \"max_tokens\": 16}";
        long before = gateway.rssBytes();
        RssSampler sampler = RssSampler.start(gateway);
        long startNanos = System.nanoTime();
        HttpResponse<String> response = http.send(completion(body).build(), HttpResponse.BodyHandlers.ofString());
        double seconds = (System.nanoTime() - startNanos) / 1e9;
        long peak = sampler.stop();
        row(String.format("one %.1f MB prompt", promptBytes / 1e6), String.format("%d in %.2f s", response.statusCode(), seconds),
                String.format("RSS %d → peak %d MB (+%d); %s", before >> 20, peak >> 20, (peak - before) >> 20, brief(response.body())));
        before = gateway.rssBytes();
        sampler = RssSampler.start(gateway);
        startNanos = System.nanoTime();
        List<CompletableFuture<HttpResponse<String>>> calls = new ArrayList<>();
        for (int i = 0; i < hugePrompts; i++) {
            calls.add(http.sendAsync(completion(body).build(), HttpResponse.BodyHandlers.ofString()));
        }
        Map<String, Integer> statuses = new TreeMap<>();
        for (CompletableFuture<HttpResponse<String>> call : calls) {
            statuses.merge(Integer.toString(call.join().statusCode()), 1, Integer::sum);
        }
        seconds = (System.nanoTime() - startNanos) / 1e9;
        peak = sampler.stop();
        row(hugePrompts + " of them at once", String.format("statuses %s, all answered in %.2f s", statuses, seconds),
                String.format("RSS %d → peak %d MB (+%d)", before >> 20, peak >> 20, (peak - before) >> 20));
    }

    private void boundary() throws IOException, InterruptedException {
        StringBuilder results = new StringBuilder();
        for (int length : new int[]{context - 1, context, context + 1}) {
            StringBuilder ids = new StringBuilder();
            for (int i = 0; i < length; i++) {
                ids.append(i == 0 ? "" : ",").append(4 + i % 1000);
            }
            String body = "{\"prompt\": [" + ids + "], \"max_tokens\": 1, \"ignore_eos\": true}";
            HttpResponse<String> response = http.send(completion(body).build(), HttpResponse.BodyHandlers.ofString());
            results.append(results.isEmpty() ? "" : ", ").append(length).append(" + 1 → ").append(response.statusCode());
        }
        row("context boundary (prompt tokens + max_tokens 1)", results.toString(), "context " + context);
    }

    private HttpRequest.Builder completion(String body) {
        return ClientApiKey.authorize(HttpRequest.newBuilder(endpoint.resolve("/v1/completions")))
                .timeout(Duration.ofMinutes(5)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
    }

    private static String authorization() {
        HttpRequest probe = ClientApiKey.authorize(HttpRequest.newBuilder(URI.create("http://localhost/"))).build();
        return probe.headers().firstValue("Authorization").map(v -> "Authorization: " + v + "\r\n").orElse("");
    }

    private Map<String, Double> metrics() throws IOException, InterruptedException {
        String text = http.send(HttpRequest.newBuilder(endpoint.resolve("/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
        Map<String, Double> values = new TreeMap<>();
        for (String line : text.split("\n")) {
            int space = line.lastIndexOf(' ');
            if (!line.startsWith("#") && space > 0) {
                try {
                    values.put(line.substring(0, space), Double.parseDouble(line.substring(space + 1)));
                } catch (NumberFormatException ignored) {
                    // not a sample line
                }
            }
        }
        return values;
    }

    private void row(String what, String figure, String detail) {
        rows.add(new String[]{what, figure, detail});
        System.out.printf("%s: %s (%s)%n", what, figure, detail);
    }

    private static String brief(String body) {
        String oneLine = body.replace('\n', ' ');
        return oneLine.length() > 140 ? oneLine.substring(0, 140) + "…" : oneLine;
    }

    private static String rootMessage(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null) {
            root = root.getCause();
        }
        return root.getClass().getSimpleName() + " " + root.getMessage();
    }

    /** The machine, so figures are read against it. */
    private static String machine() {
        String cpu = "?";
        try {
            cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                    .findFirst().map(l -> l.substring(l.indexOf(':') + 1).strip()).orElse("?");
        } catch (IOException ignored) {
            // not Linux: the CPU stays unnamed
        }
        String load = "?";
        try {
            load = Files.readString(Path.of("/proc/loadavg")).strip();
        } catch (IOException ignored) {
            // not Linux
        }
        return String.format("machine: %s, %d cores (%s), %.1f GiB, load %s, %s %s", hostName(),
                Runtime.getRuntime().availableProcessors(), cpu,
                ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean())
                        .getTotalMemorySize() / (double) (1L << 30), load, System.getProperty("os.name"), System.getProperty("os.version"));
    }

    private static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "?";
        }
    }

    /** Samples a process's RSS every 20 ms on a thread of its own; {@link #stop} returns the highest seen. */
    private static final class RssSampler {
        private final AtomicLong peak = new AtomicLong();
        private volatile boolean running = true;
        private final Thread thread;

        private RssSampler(ProcessMemory process) {
            peak.set(process.rssBytes());
            thread = Thread.ofPlatform().daemon(true).name("rss-sampler").start(() -> {
                while (running) {
                    try {
                        peak.accumulateAndGet(process.rssBytes(), Math::max);
                        Thread.sleep(20);
                    } catch (InterruptedException | RuntimeException e) {
                        return;
                    }
                }
            });
        }

        static RssSampler start(ProcessMemory process) {
            return new RssSampler(process);
        }

        long stop() throws InterruptedException {
            running = false;
            thread.join();
            return peak.get();
        }
    }
}
