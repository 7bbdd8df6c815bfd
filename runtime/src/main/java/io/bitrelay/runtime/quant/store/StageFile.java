package io.bitrelay.runtime.quant.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.runtime.checkpoint.CheckpointException;
import io.bitrelay.runtime.checkpoint.SafetensorsFile;
import io.bitrelay.runtime.checkpoint.SafetensorsWriter;
import io.bitrelay.runtime.checkpoint.TensorInfo;
import io.bitrelay.runtime.model.opt.LayerNormWeights;
import io.bitrelay.runtime.model.opt.LayerWeights;
import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.LinearLayer;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.quant.RecipeOptions;
import io.bitrelay.runtime.quant.StoredLinear;
import io.bitrelay.runtime.quant.StoredLinears;
import io.bitrelay.runtime.tensor.DType;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;

/**
 * One quantized pipeline stage on disk, so a restart rebuilds it without calibrating or quantizing again.
 * A safetensors file holding what the recipe changed relative to the FP32 checkpoint: every
 * {@link StoredLinear}'s tensors as {@code model.decoder.layers.N.self_attn.q_proj.codes} (… {@code .scales},
 * {@code .bias}, whatever the layer names), FP32 linears the recipe rewrote (e.g. smoothed but kept FP32) as
 * {@code ….weight} / {@code ….bias}, and rewritten LayerNorms (SmoothQuant folds 1/s into them) as
 * {@code model.decoder.layers.N.self_attn_layer_norm.weight} / {@code .bias}. Whatever the file lacks is
 * taken from the FP32 stage. The header's {@code __metadata__["bitrelay"]} is JSON:
 * <pre>
 * { "format": "bitrelay-quantized-stage/1", "fingerprint": "…", "recipe": "w8a8-smoothquant", "alpha": "0.5",
 *   "options": { "activationRanges": "min-max", "weights": "symmetric", "biasCorrection": "off" },
 *   "firstLayer": 0, "endLayer": 4,
 *   "linears": { "model.decoder.layers.0.self_attn.q_proj": { "kind": "w8a8", "settings": { … } }, … } }
 * </pre>
 */
public final class StageFile {
    public static final String FORMAT = "bitrelay-quantized-stage/1";
    static final String METADATA_KEY = "bitrelay";
    /** A rewritten FP32 linear; {@link StoredLinear} kinds are the quantized ones. */
    static final String FP32_KIND = "fp32";
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * What a stage file was made for; a file made for anything else is refused.
     *
     * @param options the recipe's choices that change what it builds ({@link RecipeOptions#effectiveFor}); a file
     *                that does not record them holds {@link RecipeOptions#LEGACY}
     */
    public record Identity(String fingerprint, String recipe, float alpha, RecipeOptions options, int firstLayer, int endLayer) {
        /** With {@link RecipeOptions#LEGACY}: for recipes the choices do not change (W8A8), as their files record. */
        public Identity(String fingerprint, String recipe, float alpha, int firstLayer, int endLayer) {
            this(fingerprint, recipe, alpha, RecipeOptions.LEGACY, firstLayer, endLayer);
        }
    }

    /** A written file: its size and the CRC32C of all its bytes (recorded in the recipe, checked on load). */
    public record Written(Path file, long bytes, long crc32c) {
    }

    private StageFile() {
    }

    /** File name of a stage's layers in a store directory. */
    public static String fileName(int firstLayer, int endLayer) {
        return String.format("stage-layers-%03d-%03d.safetensors", firstLayer, endLayer);
    }

    /**
     * Writes what {@code quantized} changed relative to {@code base} (same stage) to {@code file}, through a
     * temporary file moved into place, so a crash never leaves a half-written file under the final name.
     */
    public static Written save(Path file, OptModel base, OptModel quantized, Identity identity) {
        if (!base.range().equals(quantized.range()) || base.range().first() != identity.firstLayer()
                || base.range().end() != identity.endLayer()) {
            throw new IllegalArgumentException("stage " + base.range() + " saved as layers [" + identity.firstLayer()
                    + ", " + identity.endLayer() + ")");
        }
        List<SafetensorsWriter.RawDeclared> declared = new ArrayList<>();
        List<MemorySegment> data = new ArrayList<>();
        ObjectNode meta = JSON.createObjectNode();
        meta.put("format", FORMAT);
        meta.put("fingerprint", identity.fingerprint());
        meta.put("recipe", identity.recipe());
        meta.put("alpha", Float.toString(identity.alpha()));
        StoredOptions.write(meta, identity.options());
        meta.put("firstLayer", identity.firstLayer());
        meta.put("endLayer", identity.endLayer());
        ObjectNode linears = meta.putObject("linears");
        LayerWeights[] baseLayers = base.weights().layers();
        LayerWeights[] layers = quantized.weights().layers();
        for (int local = 0; local < layers.length; local++) {
            String prefix = "model.decoder.layers." + (identity.firstLayer() + local) + ".";
            LayerWeights b = baseLayers[local];
            LayerWeights q = layers[local];
            norm(prefix + "self_attn_layer_norm", b.selfAttnLayerNorm(), q.selfAttnLayerNorm(), declared, data);
            norm(prefix + "final_layer_norm", b.finalLayerNorm(), q.finalLayerNorm(), declared, data);
            for (Slot slot : Slot.values()) {
                linear(prefix + slot.path, slot.get.apply(b), slot.get.apply(q), declared, data, linears);
            }
        }
        Path temp = file.resolveSibling(file.getFileName() + ".tmp");
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            try (SafetensorsWriter writer = SafetensorsWriter.raw(temp, declared,
                    Map.of(METADATA_KEY, JSON.writeValueAsString(meta)))) {
                for (int i = 0; i < declared.size(); i++) {
                    writer.writeRaw(declared.get(i).name(), data.get(i));
                }
            }
            long crc = crc32c(temp);
            long bytes = Files.size(temp);
            Files.move(temp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            return new Written(file, bytes, crc);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write quantized stage " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Rebuilds the quantized stage saved in {@code file} on top of {@code base} (its FP32 stage, which must
     * stay open while the result is used, as with {@code RecipeApplier.apply}).
     *
     * @param expectedCrc32c the CRC32C the recipe recorded, or -1 to skip the check
     * @throws QuantStoreException naming the file and the problem: missing, truncated, damaged (CRC), made for
     *                             another model, recipe, α, recipe options or layer range, or with tensors that do
     *                             not fit
     */
    public static OptModel load(Path file, OptModel base, Identity expected, long expectedCrc32c) {
        if (base.range().first() != expected.firstLayer() || base.range().end() != expected.endLayer()) {
            throw new QuantStoreException(file + ": the FP32 stage holds " + base.range() + ", the file layers ["
                    + expected.firstLayer() + ", " + expected.endLayer() + ")");
        }
        Arena arena = Arena.ofShared();
        try (Reader reader = Reader.open(file, expected, expectedCrc32c)) {
            LayerWeights[] baseLayers = base.weights().layers();
            LayerWeights[] restored = new LayerWeights[baseLayers.length];
            for (int local = 0; local < baseLayers.length; local++) {
                restored[local] = reader.restoreLayer(local, baseLayers[local], arena);
            }
            return base.derive(base.weights().withLayers(restored), arena);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /**
     * An open, checked stage file whose layers are rebuilt one at a time, each on top of its FP32 layer: what a
     * GPU worker streaming its layers uses, so the host never holds the stage. Confined to the opening thread.
     */
    public static final class Reader implements AutoCloseable {
        private final Path file;
        private final Identity identity;
        private final Arena mapping;
        private final SafetensorsFile stored;
        private final JsonNode linears;

        private Reader(Path file, Identity identity, Arena mapping, SafetensorsFile stored, JsonNode linears) {
            this.file = file;
            this.identity = identity;
            this.mapping = mapping;
            this.stored = stored;
            this.linears = linears;
        }

        /** Opens {@code file} after checking its CRC32C (unless -1) and that it was made for {@code expected}. */
        public static Reader open(Path file, Identity expected, long expectedCrc32c) {
            if (!Files.isRegularFile(file)) {
                throw new QuantStoreException(file + ": stage file is missing");
            }
            if (expectedCrc32c >= 0) {
                long crc = crc32c(file);
                if (crc != expectedCrc32c) {
                    throw new QuantStoreException(file + ": CRC32C " + Long.toHexString(crc) + " differs from the recorded "
                            + Long.toHexString(expectedCrc32c) + " (damaged or replaced file)");
                }
            }
            Arena mapping = Arena.ofConfined();
            try {
                SafetensorsFile stored;
                try {
                    stored = SafetensorsFile.open(file, mapping);
                } catch (CheckpointException e) {
                    throw new QuantStoreException(e.getMessage(), e);
                }
                JsonNode meta = metadata(file, stored);
                checkIdentity(file, meta, expected);
                return new Reader(file, expected, mapping, stored, meta.path("linears"));
            } catch (RuntimeException e) {
                mapping.close();
                throw e;
            }
        }

        /** The saved layer {@code local} of the stage rebuilt on {@code base}, its FP32 layer; new tensors go to {@code arena}. */
        public LayerWeights restoreLayer(int local, LayerWeights base, Arena arena) {
            if (local < 0 || local >= identity.endLayer() - identity.firstLayer()) {
                throw new QuantStoreException(file + ": holds layers [" + identity.firstLayer() + ", " + identity.endLayer()
                        + "), asked for local layer " + local);
            }
            try {
                String prefix = "model.decoder.layers." + (identity.firstLayer() + local) + ".";
                Map<Slot, LinearLayer> slots = new HashMap<>();
                for (Slot slot : Slot.values()) {
                    slots.put(slot, restoreLinear(file, stored, prefix + slot.path, linears.get(prefix + slot.path),
                            slot.get.apply(base), arena));
                }
                return new LayerWeights(
                        restoreNorm(file, stored, prefix + "self_attn_layer_norm", base.selfAttnLayerNorm(), arena),
                        slots.get(Slot.Q), slots.get(Slot.K), slots.get(Slot.V), slots.get(Slot.OUT),
                        restoreNorm(file, stored, prefix + "final_layer_norm", base.finalLayerNorm(), arena),
                        slots.get(Slot.FC1), slots.get(Slot.FC2));
            } catch (QuantStoreException e) {
                throw e;
            } catch (RuntimeException e) {
                throw new QuantStoreException(file + ": " + (e.getMessage() != null ? e.getMessage() : e.toString()), e);
            }
        }

        @Override
        public void close() {
            mapping.close();
        }
    }

    /** CRC32C of a whole file. */
    public static long crc32c(Path file) {
        CRC32C crc = new CRC32C();
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            long size = channel.size();
            long chunk = 1L << 26;
            for (long start = 0; start < size; start += chunk) {
                MemorySegment part = channel.map(FileChannel.MapMode.READ_ONLY, start, Math.min(chunk, size - start), arena);
                crc.update(part.asByteBuffer());
            }
        } catch (IOException e) {
            throw new QuantStoreException(file + ": cannot read: " + e.getMessage(), e);
        }
        return crc.getValue();
    }

    // ---- the parts of a layer --------------------------------------------------------------------------------

    private enum Slot {
        Q("self_attn.q_proj", LayerWeights::qProj),
        K("self_attn.k_proj", LayerWeights::kProj),
        V("self_attn.v_proj", LayerWeights::vProj),
        OUT("self_attn.out_proj", LayerWeights::outProj),
        FC1("fc1", LayerWeights::fc1),
        FC2("fc2", LayerWeights::fc2);

        final String path;
        final java.util.function.Function<LayerWeights, LinearLayer> get;

        Slot(String path, java.util.function.Function<LayerWeights, LinearLayer> get) {
            this.path = path;
            this.get = get;
        }
    }

    private static void norm(String name, LayerNormWeights base, LayerNormWeights norm, List<SafetensorsWriter.RawDeclared> declared,
                             List<MemorySegment> data) {
        if (norm == null || norm.equals(base)) {
            return;
        }
        declared.add(new SafetensorsWriter.RawDeclared(name + ".weight", DType.F32, new long[]{norm.width()}));
        data.add(norm.gain().asSlice(0, (long) norm.width() * Float.BYTES));
        declared.add(new SafetensorsWriter.RawDeclared(name + ".bias", DType.F32, new long[]{norm.width()}));
        data.add(norm.bias().asSlice(0, (long) norm.width() * Float.BYTES));
    }

    private static void linear(String name, LinearLayer base, LinearLayer layer, List<SafetensorsWriter.RawDeclared> declared,
                               List<MemorySegment> data, ObjectNode linears) {
        if (layer == base || layer.equals(base)) {
            return;
        }
        ObjectNode entry = linears.putObject(name);
        switch (layer) {
            case StoredLinear stored -> {
                entry.put("kind", stored.kind());
                ObjectNode settings = entry.putObject("settings");
                new java.util.TreeMap<>(stored.settings()).forEach(settings::put);
                for (StoredLinear.Tensor tensor : stored.tensors()) {
                    declared.add(new SafetensorsWriter.RawDeclared(name + "." + tensor.name(), tensor.dtype(), tensor.shape()));
                    data.add(tensor.data());
                }
            }
            case Linear fp32 -> {
                entry.put("kind", FP32_KIND);
                entry.putObject("settings").put("out_features", Integer.toString(fp32.outFeatures()))
                        .put("in_features", Integer.toString(fp32.inFeatures()));
                declared.add(new SafetensorsWriter.RawDeclared(name + ".weight", DType.F32,
                        new long[]{fp32.outFeatures(), fp32.inFeatures()}));
                data.add(fp32.weight().asSlice(0, (long) fp32.outFeatures() * fp32.inFeatures() * Float.BYTES));
                if (fp32.bias() != null) {
                    declared.add(new SafetensorsWriter.RawDeclared(name + ".bias", DType.F32, new long[]{fp32.outFeatures()}));
                    data.add(fp32.bias().asSlice(0, (long) fp32.outFeatures() * Float.BYTES));
                }
            }
            default -> throw new IllegalArgumentException(name + " is a " + layer.getClass().getSimpleName()
                    + ", which cannot be saved (quantized linears implement StoredLinear)");
        }
    }

    private static LinearLayer restoreLinear(Path file, SafetensorsFile stored, String name, JsonNode entry, LinearLayer base,
                                             Arena arena) {
        if (entry == null) {
            return base;
        }
        String kind = entry.path("kind").asText();
        Map<String, String> settings = new LinkedHashMap<>();
        entry.path("settings").properties().forEach(e -> settings.put(e.getKey(), e.getValue().asText()));
        Map<String, MemorySegment> tensors = new LinkedHashMap<>();
        for (TensorInfo info : stored.tensors().values()) {
            if (info.name().startsWith(name + ".") && info.name().indexOf('.', name.length() + 1) < 0) {
                tensors.put(info.name().substring(name.length() + 1), stored.data(info));
            }
        }
        LinearLayer layer;
        try {
            layer = kind.equals(FP32_KIND) ? restoreFp32(settings, tensors, arena)
                    : StoredLinears.restore(kind, settings, tensors, arena);
        } catch (RuntimeException e) {
            throw new QuantStoreException(file + ": " + name + ": " + e.getMessage(), e);
        }
        if (layer.inFeatures() != base.inFeatures() || layer.outFeatures() != base.outFeatures()) {
            throw new QuantStoreException(file + ": " + name + " is (" + layer.outFeatures() + ", " + layer.inFeatures()
                    + "), the model's (" + base.outFeatures() + ", " + base.inFeatures() + ")");
        }
        return layer;
    }

    private static Linear restoreFp32(Map<String, String> settings, Map<String, MemorySegment> tensors, Arena arena) {
        int out = Integer.parseInt(settings.get("out_features"));
        int in = Integer.parseInt(settings.get("in_features"));
        MemorySegment weight = copy(tensors.get("weight"), (long) out * in * Float.BYTES, "weight", arena);
        MemorySegment bias = tensors.containsKey("bias") ? copy(tensors.get("bias"), (long) out * Float.BYTES, "bias", arena) : null;
        return new Linear(weight, bias, out, in);
    }

    private static LayerNormWeights restoreNorm(Path file, SafetensorsFile stored, String name, LayerNormWeights base, Arena arena) {
        boolean hasGain = stored.tensors().containsKey(name + ".weight");
        if (!hasGain && !stored.tensors().containsKey(name + ".bias")) {
            return base;
        }
        long bytes = (long) base.width() * Float.BYTES;
        try {
            return new LayerNormWeights(copy(data(stored, name + ".weight"), bytes, name + ".weight", arena),
                    copy(data(stored, name + ".bias"), bytes, name + ".bias", arena), base.width());
        } catch (RuntimeException e) {
            throw new QuantStoreException(file + ": " + e.getMessage(), e);
        }
    }

    private static MemorySegment data(SafetensorsFile stored, String name) {
        TensorInfo info = stored.tensors().get(name);
        if (info == null) {
            throw new IllegalArgumentException("tensor '" + name + "' is missing");
        }
        if (info.dtype() != DType.F32) {
            throw new IllegalArgumentException("tensor '" + name + "' is " + info.dtype() + ", expected F32");
        }
        return stored.data(info);
    }

    private static MemorySegment copy(MemorySegment source, long bytes, String name, Arena arena) {
        if (source == null) {
            throw new IllegalArgumentException("tensor '" + name + "' is missing");
        }
        if (source.byteSize() != bytes) {
            throw new IllegalArgumentException("tensor '" + name + "' has " + source.byteSize() + " bytes, expected " + bytes);
        }
        MemorySegment copy = arena.allocate(bytes, 64);
        copy.copyFrom(source);
        return copy;
    }

    private static JsonNode metadata(Path file, SafetensorsFile stored) {
        String text = stored.metadata().get(METADATA_KEY);
        if (text == null) {
            throw new QuantStoreException(file + ": no '" + METADATA_KEY + "' metadata: not a bitrelay quantized stage");
        }
        JsonNode meta;
        try {
            meta = JSON.readTree(text);
        } catch (IOException e) {
            throw new QuantStoreException(file + ": metadata is not valid JSON: " + e.getMessage(), e);
        }
        if (!FORMAT.equals(meta.path("format").asText())) {
            throw new QuantStoreException(file + ": format '" + meta.path("format").asText() + "', expected " + FORMAT);
        }
        return meta;
    }

    private static void checkIdentity(Path file, JsonNode meta, Identity expected) {
        List<String> differences = new ArrayList<>();
        differ(differences, "model fingerprint", meta.path("fingerprint").asText(), expected.fingerprint());
        differ(differences, "recipe", meta.path("recipe").asText(), expected.recipe());
        differ(differences, "alpha", meta.path("alpha").asText(), Float.toString(expected.alpha()));
        try {
            StoredOptions.differ(differences, StoredOptions.read(meta), expected.options());
        } catch (IllegalArgumentException e) {
            throw new QuantStoreException(file + ": unreadable metadata: " + e.getMessage(), e);
        }
        differ(differences, "layers", "[" + meta.path("firstLayer").asInt(-1) + ", " + meta.path("endLayer").asInt(-1) + ")",
                "[" + expected.firstLayer() + ", " + expected.endLayer() + ")");
        if (!differences.isEmpty()) {
            throw new QuantStoreException(file + ": made for another stage: " + String.join("; ", differences));
        }
    }

    static void differ(List<String> differences, String what, String saved, String wanted) {
        if (!saved.equals(wanted)) {
            differences.add(what + " " + abbreviate(saved) + " saved, " + abbreviate(wanted) + " wanted");
        }
    }

    private static String abbreviate(String value) {
        return value.matches("[0-9a-f]{64}") ? value.substring(0, 12) + "…" : value;
    }
}
